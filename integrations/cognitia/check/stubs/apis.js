// $lib/apis and $lib/apis/ollama: model lists and Ollama calls the check does not make.
export const getModels = async () => [];
export const getOllamaVersion = async () => false;
export const deleteModel = async () => null;
export const pullModel = async () => [null, null];
export const unloadModel = async () => null;
