// The stores the selector and its rows read ($lib/stores pulls in the whole app, not needed here).
import { writable } from 'svelte/store';
export const user = writable({ id: 'check-user', role: 'user' });
export const MODEL_DOWNLOAD_POOL = writable({});
export const models = writable([]);
export const mobile = writable(false);
export const temporaryChatEnabled = writable(false);
export const settings = writable({ pinnedModels: [] });
export const config = writable({ features: {} });
