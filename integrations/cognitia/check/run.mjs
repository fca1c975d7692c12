// Mounts the compiled selector in jsdom against Cognitia's backend (the kit's router) and the
// running pricing service, opens it, and checks that what it renders is the service's view:
//   node run.mjs BUNDLE.js KIT_URL SERVICE_URL
// The curated list must equal the service's curated view (categories in its order, its names,
// its lists of 1 to 9), "Ver todos" must equal view=all, every row's price line must be the
// service's text (its COP at its rate, per 10K; Gratis; Local; unknown with its reason).
// Prints what it compared; exits 1 on the first difference.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const [bundle, kitUrl, serviceUrl] = process.argv.slice(2);
const TOKEN = 'cognitia-check-user';
const NOT_IN_SERVICE = ['no-such-model-anywhere', 'cognitia_llm_zerogpu.smollm2'];
const failures = [];
const check = (ok, what) => {
	if (!ok) failures.push(what);
	return ok;
};
const same = (a, b, what) => check(JSON.stringify(a) === JSON.stringify(b), `${what}\n  rendered: ${JSON.stringify(a)}\n  service:  ${JSON.stringify(b)}`);

const fromService = async (view) => {
	const res = await fetch(`${serviceUrl}/api/v1/pricing/models?view=${view}`);
	if (!res.ok) throw new Error(`service ${view}: ${res.status}`);
	return res.json();
};
const curated = await fromService('curated');
const all = await fromService('all');
const byAlias = new Map();
for (const item of all.items) for (const s of [item.model_id, ...item.aliases]) if (!byAlias.has(s.toLowerCase())) byAlias.set(s.toLowerCase(), item);
const resolve = (id) => byAlias.get(id.toLowerCase())?.model_id;

// Cognitia's model list: every model the service lists, plus ids it does not know.
const ids = [...all.items.map((i) => i.model_id), ...NOT_IN_SERVICE];
const items = ids.map((id) => ({ label: id, value: id, model: { id, name: id, owned_by: 'openai', info: { meta: {} }, tags: [] } }));

const dom = new JSDOM('<!doctype html><html><body></body></html>', {
	url: 'http://cognitia.check/',
	runScripts: 'outside-only',
	pretendToBeVisual: true
});
const { window } = dom;
// What a browser has and jsdom lacks; fetch goes to Cognitia's backend (the kit's router).
window.fetch = (url, init) => fetch(new URL(url, kitUrl), init);
window.ResizeObserver = class { observe() {} unobserve() {} disconnect() {} };
window.matchMedia = () => ({ matches: false, addListener() {}, removeListener() {}, addEventListener() {}, removeEventListener() {} });
window.Element.prototype.scrollIntoView = () => {};
// Svelte's transitions use the Web Animations API: finish every animation at once.
window.Element.prototype.animate = function () {
	let done = null;
	return {
		cancel() {}, finish() {}, play() {}, pause() {}, currentTime: 0, playState: 'finished',
		finished: Promise.resolve(),
		get onfinish() { return done; },
		set onfinish(f) { done = f; setTimeout(() => f?.(), 0); },
		addEventListener() {}, removeEventListener() {}
	};
};
window.Element.prototype.getAnimations = () => [];
window.PointerEvent ??= class extends window.MouseEvent { constructor(type, init = {}) { super(type, init); this.pointerType = init.pointerType ?? 'mouse'; this.pointerId = 1; } };
window.localStorage.setItem('token', TOKEN);
const categoryIds = [...new Set([...curated.categories, ...all.categories].map((c) => c.id)), 'favorites', 'others'];
window.localStorage.setItem('model-selector-expanded', JSON.stringify(categoryIds)); // every group open
window.eval(readFileSync(bundle, 'utf8'));
window.CognitiaSelector.start(window.document.body, items);

const doc = window.document;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, predicate, seconds = 30) {
	const deadline = Date.now() + seconds * 1000;
	while (Date.now() < deadline) {
		if (predicate()) return;
		await sleep(50);
	}
	throw new Error(`timed out after ${seconds}s waiting for ${what}`);
}
const rows = () => [...doc.querySelectorAll('[aria-roledescription="model-item"]')];

function groups() {
	const list = [...doc.querySelectorAll('div.max-h-64')].at(-1);
	const out = [];
	for (const child of list.children) {
		if (child.tagName === 'BUTTON' && child.querySelector('span.uppercase')) {
			out.push({ name: child.querySelector('span.uppercase').textContent.trim(), ids: [] });
		} else if (child.classList.contains('pl-1') && out.length) {
			out.at(-1).ids = [...child.querySelectorAll('[aria-roledescription="model-item"]')].map((r) => r.dataset.value);
		}
	}
	return out;
}
function priceOf(row) {
	const line = row.querySelector('[data-price-status]');
	return {
		status: line.dataset.priceStatus,
		reason: line.dataset.priceReason,
		text: line.textContent.trim(),
		tooltip: line.parentElement?._tippy?.props?.content ?? null
	};
}
const expectedGroups = (view, { others }) => {
	const out = [...view.categories]
		.sort((a, b) => a.order - b.order)
		.map((c) => ({ name: c.name, ids: c.model_ids.map(resolve) }));
	if (others) {
		const listed = new Set(out.flatMap((g) => g.ids));
		out.push({ name: 'Otros modelos', ids: ids.filter((id) => !listed.has(resolve(id) ?? id)) });
	}
	return out;
};
const expectedText = (item) =>
	item.price_status === 'priced'
		? `${item.input_cop_per_10k_display} / 10K (entrada) · ${item.output_cop_per_10k_display} / 10K (salida)`
		: item.price_label;

// Open the selector from the keyboard (Enter on its button), as bits-ui's trigger handles it.
const trigger = doc.getElementById('model-selector-check-button');
await sleep(300); // bits-ui binds its trigger's listeners after the first render
trigger.dispatchEvent(new window.KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
await until('the curated list', () => rows().length > 0 && groups().length > 0);

const shownCurated = groups();
same(shownCurated, expectedGroups(curated, { others: false }), 'curated view: categories, order, names, models');
check(shownCurated.every((g) => g.ids.length >= 1 && g.ids.length <= 9), 'curated: 1 to 9 models per category');
check(!shownCurated.some((g) => g.ids.some((id) => byAlias.get(id.toLowerCase())?.special)), 'curated: no specials');
const note = [...doc.querySelectorAll('div.px-4\\.5')].map((d) => d.textContent.trim()).find((t) => t.startsWith('Precios'));
same(note, `Precios estimados en COP por 10K tokens. 1 USD = ${new Intl.NumberFormat('es-CO').format(all.currency.rate)} COP.`, 'the note above the list');
console.log(`curated: ${shownCurated.length} categories, ${shownCurated.reduce((n, g) => n + g.ids.length, 0)} rows, equal to the service's curated view`);
for (const g of shownCurated) console.log(`  ${g.name}: ${g.ids.join(', ')}`);

// "Ver todos".
const showAll = [...doc.querySelectorAll('button')].find((b) => b.textContent.trim() === 'Show all');
showAll.dispatchEvent(new window.MouseEvent('click', { bubbles: true }));
await until('"Ver todos"', () => rows().length >= ids.length);
const shownAll = groups();
same(shownAll, expectedGroups(all, { others: true }), '"Ver todos": view=all categories, then every other model');
console.log(`"Ver todos": ${shownAll.length} groups (${shownAll.map((g) => g.name).join(', ')}), ${rows().length} rows, equal to view=all`);

// Every row's price line: the service's text, its status, unknown with the reason in the tooltip.
let checked = 0;
for (const row of rows()) {
	const id = row.dataset.value;
	const item = byAlias.get(id.toLowerCase());
	const price = priceOf(row);
	if (item) {
		check(price.status === item.price_status, `${id}: status ${price.status}, service ${item.price_status}`);
		check(price.text === expectedText(item), `${id}: "${price.text}", service "${expectedText(item)}"`);
	} else {
		check(price.status === 'unknown' && price.text === 'Sin precio conocido', `${id} (not in the service): ${price.text}`);
	}
	if (price.status === 'unknown') check(!!price.reason && price.tooltip?.includes(price.reason), `${id}: unknown without its reason in the tooltip`);
	check(!price.text.includes('Sin precio aún'), `${id}: "Sin precio aún"`);
	check(row.getAttribute('aria-label') === id && row.hasAttribute('data-arrow-selected'), `${id}: row attributes`);
	checked += 1;
}
const sample = (id) => { const row = rows().find((r) => r.dataset.value === id); return row ? priceOf(row).text : 'absent'; };
console.log(`prices: ${checked} rows equal to the service's texts, e.g. gpt-4o "${sample('gpt-4o')}", omni-moderation-latest "${sample('omni-moderation-latest')}", cognitia_llm_zerogpu.phi3 "${sample('cognitia_llm_zerogpu.phi3')}", no-such-model-anywhere "${sample('no-such-model-anywhere')}"`);

// Back to the recommended list, then search: across everything, not only the curated view.
showAll.dispatchEvent(new window.MouseEvent('click', { bubbles: true }));
await until('the curated list again', () => JSON.stringify(groups()) === JSON.stringify(shownCurated));
const outside = all.items.find((i) => !i.special && !curated.items.some((c) => c.model_id === i.model_id) && i.price_status === 'priced');
const input = doc.getElementById('model-search-input');
input.value = outside.model_id;
input.dispatchEvent(new window.Event('input', { bubbles: true }));
await until(`search for ${outside.model_id}`, () => rows().some((r) => r.dataset.value === outside.model_id));
console.log(`search: "${outside.model_id}" (not recommended) found among ${rows().length} rows`);

if (failures.length) {
	console.log(`FAILED: ${failures.length} difference(s)`);
	for (const f of failures.slice(0, 20)) console.log(`- ${f}`);
	process.exit(1);
}
console.log('OK: the rendered selector equals the service\'s curated view, and "Ver todos" equals view=all');
process.exit(0);
