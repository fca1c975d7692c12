// Renders the selector's data as Selector.svelte does with the kit's module, without Cognitia:
// node test/render.mjs INPUT.json  ->  JSON on stdout.
// INPUT: {"curated": <service view>, "all": <service view=all>, "rows": [selector ids], "pinned": []}
import { readFileSync } from 'node:fs';
import { SelectorIndex, servicePrice, pricingNote } from '../build/serviceSelector.mjs';

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const rows = input.rows.map((id) => ({ value: id, label: id, model: { id } }));
const curated = new SelectorIndex(input.curated);
const all = new SelectorIndex(input.all);

const groups = (index, visible) =>
	[...index.group(visible, input.pinned ?? []).entries()].map(([id, members]) => {
		const category = index.category(id);
		return { id, name: category.name, emoji: category.emoji, ids: members.map((r) => r.value) };
	});

// What the selector lists: curated (recommended, no specials), and "Ver todos" (everything).
const curatedRows = rows.filter((r) => curated.has(r.value) && !all.isSpecial(r.value));
const out = {
	curated: groups(curated, curatedRows),
	all: groups(all, rows),
	pills_curated: curated.categories().map((c) => c.id),
	prices: Object.fromEntries(rows.map((r) => [r.value, servicePrice(all.itemFor(r.value), r.value)])),
	note: pricingNote(all),
	in_category: Object.fromEntries(
		input.all.categories.map((c) => [c.id, rows.filter((r) => all.inCategory(r.value, c.id)).map((r) => r.value)])
	)
};
process.stdout.write(JSON.stringify(out));
