// Mounts Cognitia's Selector.svelte (with the kit's edits) as the chat's model selector does.
import { mount, tick } from 'svelte';
import { writable } from 'svelte/store';
import Selector from '$lib/components/chat/ModelSelector/Selector.svelte';

const i18n = writable({ t: (key) => key, language: 'es-ES' });

export function start(target, items) {
	return mount(Selector, {
		target,
		props: { id: 'check', items, value: '' },
		context: new Map([['i18n', i18n]])
	});
}

export { tick };
