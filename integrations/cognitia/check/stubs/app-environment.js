// $app/environment as a built SvelteKit app in the browser sees it.
export const browser = true;
export const dev = false;
export const building = false;
export const version = 'check';
