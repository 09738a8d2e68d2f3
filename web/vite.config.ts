import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// The bundle is committed under api/static/app and CI rebuilds it and diffs it, so the output
// must depend on the sources only: content-hashed names, no timestamps, no source maps.
export default defineConfig({
  plugins: [preact()],
  base: "/",
  // `npm run dev`: the app on Vite's server, the API of a `lore serve` on port 8000 behind it.
  server: {
    proxy: {
      "/v1": { target: "http://127.0.0.1:8000", changeOrigin: false },
    },
  },
  build: {
    outDir: "../api/static/app",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1600,
  },
});
