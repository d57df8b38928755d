export const MODEL_HANDLERS = {};
