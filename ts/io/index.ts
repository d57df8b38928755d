export { readSafetensors, writeSafetensors, type SafetensorsDType, type SafetensorsFile, type SafetensorsTensor } from './safetensors.js';
