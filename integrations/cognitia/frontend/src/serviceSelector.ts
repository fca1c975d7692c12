// The model selector's data from the cognitia-pricing service, as the service renders it.
//
// apply.py copies this file to Cognitia's src/lib/apis/pricing/serviceSelector.ts. Selector.svelte
// reads the service's curated view (and view=all for "Ver todos") through Cognitia's backend
// (GET /api/v1/pricing/selector, the kit's router) instead of its own CURATED_MODELS_BY_CATEGORY,
// categorizeModel heuristics and USD->COP arithmetic. Nothing here computes a price or a category:
// categories, their order and names, the curated lists, the COP texts (the service's rate and
// rounding, per 10K) and the labels are the service's, shown as it sends them.
//
// No imports: the module is pure so the kit tests it without Cognitia (see ../test).

export type PriceStatus = 'priced' | 'free' | 'local' | 'unknown';

export interface ServiceItem {
	model_id: string;
	display_name: string;
	provider: string | null;
	categories: string[];
	special: string | null;
	local: boolean;
	price_status: PriceStatus;
	price_label: string;
	price_status_reason: string | null;
	price_note: string | null;
	source_url: string | null;
	input_cop_per_10k_display: string | null;
	output_cop_per_10k_display: string | null;
	typical_message_cop_display: string | null;
	aliases: string[];
}

export interface ServiceCategory {
	id: string;
	name: string;
	emoji: string;
	description: string;
	order: number;
	model_ids: string[];
}

export interface ServiceView {
	view: 'curated' | 'all';
	items: ServiceItem[];
	categories: ServiceCategory[];
	currency: { code: string; rate: number; rounding: string };
}

/** Groups whose rows are not in any of the service's categories ("Ver todos" only). */
export const OTHERS: ServiceCategory = {
	id: 'others',
	name: 'Otros modelos',
	emoji: '📚',
	description: 'Modelos sin categoría en el catálogo del servicio',
	order: Number.MAX_SAFE_INTEGER,
	model_ids: []
};

const FAVORITES: ServiceCategory = {
	id: 'favorites',
	name: 'Favoritos',
	emoji: '⭐',
	description: 'Modelos favoritos y fijados',
	order: -1,
	model_ids: []
};

const NOT_IN_SERVICE =
	'El servicio de precios no conoce este modelo: su precio es desconocido, no gratis.';

type Row = { value?: string; id?: string; model?: { id?: string } };

const rowId = (row: Row): string => row?.value ?? row?.id ?? row?.model?.id ?? '';

const key = (id: string): string => id.trim().toLowerCase();

/** One view of the service, indexed by every spelling of every model it lists. */
export class SelectorIndex {
	readonly view: ServiceView;
	private readonly byAlias = new Map<string, ServiceItem>();
	private readonly members = new Map<string, Set<ServiceItem>>();
	private readonly order = new Map<string, Map<ServiceItem, number>>();
	private readonly categorized = new Set<ServiceItem>();

	constructor(view: ServiceView) {
		this.view = view;
		for (const item of view.items) {
			for (const spelling of [item.model_id, ...item.aliases]) {
				if (!this.byAlias.has(key(spelling))) this.byAlias.set(key(spelling), item);
			}
		}
		for (const category of view.categories) {
			const members = new Set<ServiceItem>();
			const order = new Map<ServiceItem, number>();
			category.model_ids.forEach((id, position) => {
				const item = this.byAlias.get(key(id));
				if (item && !members.has(item)) {
					members.add(item);
					order.set(item, position);
					this.categorized.add(item);
				}
			});
			this.members.set(category.id, members);
			this.order.set(category.id, order);
		}
	}

	static empty(view: 'curated' | 'all'): SelectorIndex {
		return new SelectorIndex({
			view,
			items: [],
			categories: [],
			currency: { code: 'COP', rate: 0, rounding: '' }
		});
	}

	get loaded(): boolean {
		return this.view.items.length > 0;
	}

	/** The service's item for a selector id (any spelling), or null when the service has none. */
	itemFor(id: string): ServiceItem | null {
		return this.byAlias.get(key(id ?? '')) ?? null;
	}

	/** Whether the row is in this view (the curated view lists only its recommended models). */
	has(id: string): boolean {
		const item = this.itemFor(id);
		return item !== null && this.categorized.has(item);
	}

	isSpecial(id: string): boolean {
		return this.itemFor(id)?.special != null;
	}

	/** The categories of this view, in the service's order, with its names. */
	categories(): ServiceCategory[] {
		return [...this.view.categories].sort((a, b) => a.order - b.order);
	}

	category(id: string): ServiceCategory | null {
		if (id === FAVORITES.id) return FAVORITES;
		if (id === OTHERS.id) return OTHERS;
		return this.view.categories.find((c) => c.id === id) ?? null;
	}

	inCategory(id: string, categoryId: string): boolean {
		const item = this.itemFor(id);
		return item !== null && (this.members.get(categoryId)?.has(item) ?? false);
	}

	/**
	 * The rows grouped as the service groups them: favorites first (Cognitia's pins), then each
	 * category in the service's order, its rows in the order of its model_ids; in view=all the rows
	 * no category lists come last, under "Otros modelos". A row may sit in several categories, as
	 * in the service's lists.
	 */
	group<T extends Row>(rows: T[], pinned: string[] = []): Map<string, T[]> {
		const groups = new Map<string, T[]>();
		const favorites = rows.filter((row) => pinned.includes(rowId(row)));
		if (favorites.length) groups.set(FAVORITES.id, favorites);
		for (const category of this.categories()) {
			const order = this.order.get(category.id) ?? new Map<ServiceItem, number>();
			const members = rows
				.map((row, position) => ({ row, position, item: this.itemFor(rowId(row)) }))
				.filter((entry) => entry.item !== null && order.has(entry.item))
				.sort(
					(a, b) =>
						(order.get(a.item as ServiceItem) ?? 0) - (order.get(b.item as ServiceItem) ?? 0) ||
						a.position - b.position
				)
				.map((entry) => entry.row);
			if (members.length) groups.set(category.id, members);
		}
		if (this.view.view === 'all') {
			const rank = new Map(this.view.items.map((item, position) => [item, position]));
			const others = rows
				.map((row, position) => ({ row, position, item: this.itemFor(rowId(row)) }))
				.filter((entry) => entry.item === null || !this.categorized.has(entry.item))
				.sort(
					(a, b) =>
						(a.item ? (rank.get(a.item) ?? 0) : Number.MAX_SAFE_INTEGER) -
							(b.item ? (rank.get(b.item) ?? 0) : Number.MAX_SAFE_INTEGER) ||
						a.position - b.position
				)
				.map((entry) => entry.row);
			if (others.length) groups.set(OTHERS.id, others);
		}
		return groups;
	}
}

export interface PriceView {
	status: PriceStatus;
	text: string; // the row's price line, the service's own texts
	tooltip: string; // the label, and the reason, note and source where the service gives them
	reason: string | null; // why the price is unknown (or held, or delisted)
}

/** A row's price line from the service's item; an id the service lacks is unknown, never 0. */
export function servicePrice(item: ServiceItem | null, id = ''): PriceView {
	if (item === null) {
		return { status: 'unknown', text: 'Sin precio conocido', tooltip: NOT_IN_SERVICE, reason: NOT_IN_SERVICE };
	}
	const extra = [item.price_note, item.source_url].filter((part): part is string => !!part);
	if (item.price_status === 'unknown') {
		const reason =
			item.price_status_reason ??
			`El servicio de precios lista ${item.model_id || id} sin un precio conocido.`;
		return {
			status: 'unknown',
			text: item.price_label,
			tooltip: [item.price_label, reason, ...extra].join(' · '),
			reason
		};
	}
	if (item.price_status === 'priced') {
		const text =
			`${item.input_cop_per_10k_display} / 10K (entrada) · ` +
			`${item.output_cop_per_10k_display} / 10K (salida)`;
		return {
			status: 'priced',
			text,
			tooltip: [item.price_label, item.price_status_reason, ...extra].filter(Boolean).join(' · '),
			reason: item.price_status_reason
		};
	}
	// free ("Gratis") and local ("Local (sin costo API)"): the service's label says it.
	return {
		status: item.price_status,
		text: item.price_label,
		tooltip: [item.price_label, ...extra].join(' · '),
		reason: null
	};
}

/** The note above the list: the service's unit and rate, never a constant of the frontend. */
export function pricingNote(index: SelectorIndex): string {
	const { code, rate } = index.view.currency;
	if (!rate) return 'Precios del servicio de precios (cargando…)';
	const shown = new Intl.NumberFormat('es-CO', { maximumFractionDigits: 6 }).format(rate);
	return `Precios estimados en ${code} por 10K tokens. 1 USD = ${shown} ${code}.`;
}

/** The service's view through Cognitia's backend (the kit's GET /api/v1/pricing/selector). */
export async function fetchSelectorView(
	baseUrl: string,
	token: string,
	view: 'curated' | 'all',
	fetcher: typeof fetch = fetch
): Promise<ServiceView> {
	const res = await fetcher(`${baseUrl}/pricing/selector?view=${view}`, {
		headers: token ? { Authorization: `Bearer ${token}` } : undefined
	});
	if (!res.ok) {
		throw new Error(`Failed to fetch the pricing service's ${view} view: ${res.status}`);
	}
	return (await res.json()) as ServiceView;
}
