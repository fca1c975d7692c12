// Compiles Cognitia's selector (Selector.svelte, ModelItem.svelte and what they import from the
// applied checkout's src/lib) with the Svelte compiler into one browser bundle for jsdom.
// node build.mjs APPLIED_CHECKOUT OUT.js   (run from the check's npm directory)
import { build } from 'esbuild';
import sveltePlugin from 'esbuild-svelte';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const [checkout, out] = process.argv.slice(2);
const LIB = join(resolve(checkout), 'src', 'lib');

// Modules that pull in the whole app (stores, API clients, all dayjs locales) are replaced by
// the few names the selector uses; everything else comes from the checkout as it is.
const STUBS = {
	'$app/environment': 'stubs/app-environment.js',
	'$app/navigation': 'stubs/app-navigation.js',
	'$lib/stores': 'stubs/stores.js',
	'$lib/utils': 'stubs/utils.js',
	'$lib/apis': 'stubs/apis.js',
	'$lib/apis/ollama': 'stubs/apis.js',
	'$lib/dayjs': 'stubs/dayjs.js'
};

const aliases = {
	name: 'sveltekit-aliases',
	setup(b) {
		b.onResolve({ filter: /^\$(lib|app)(\/|$)/ }, (args) => {
			if (STUBS[args.path]) return { path: join(HERE, STUBS[args.path]) };
			if (args.path.startsWith('$app/')) return { errors: [{ text: `no stub for ${args.path}` }] };
			const base = join(LIB, args.path.slice('$lib'.length));
			for (const candidate of [base, `${base}.ts`, `${base}.js`, join(base, 'index.ts'), join(base, 'index.js')]) {
				if (existsSync(candidate) && statSync(candidate).isFile()) return { path: candidate };
			}
			return { errors: [{ text: `cannot resolve ${args.path} in ${LIB}` }] };
		});
	}
};

await build({
	entryPoints: [join(HERE, 'entry.js')],
	bundle: true,
	format: 'iife',
	globalName: 'CognitiaSelector',
	platform: 'browser',
	outfile: out,
	conditions: ['svelte', 'browser'],
	mainFields: ['svelte', 'browser', 'module', 'main'],
	nodePaths: [join(process.cwd(), 'node_modules')],
	define: { APP_VERSION: '"check"', APP_BUILD_HASH: '"check"' },
	logLevel: 'error', // Cognitia's own components warn (self-closing tags); not the check's business
	tsconfigRaw: '{}',
	plugins: [aliases, sveltePlugin({ compilerOptions: { css: 'injected' } })]
});
console.log(`compiled the selector with the Svelte compiler: ${out}`);
