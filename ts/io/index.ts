export {
  FLOAT_DTYPES, readSafetensors, readSafetensorsHeader, safetensorsData, safetensorsElementSize, safetensorsHeaderSize, toFloat32,
  writeSafetensors, type SafetensorsData, type SafetensorsDType, type SafetensorsEntry, type SafetensorsFile, type SafetensorsHeader,
  type SafetensorsTensor,
} from './safetensors.js';
