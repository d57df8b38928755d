// The array types of the reference kernels. Their f32 storage is a Float64Array; they also
// take Float32Array inputs, so that tests use them as oracles over the compiled backends'
// data (one set of test oracles).

export type Floats = Float64Array | Float32Array;
