// The addon's build script: napi-build adds the platform link arguments a Node addon needs
// (on macOS, `-undefined dynamic_lookup`, since the N-API symbols come from the node binary).
fn main() {
    napi_build::setup();
}
