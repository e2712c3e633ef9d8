/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The bridge replaces this placeholder in index.html with a fresh nonce per response
// (rest_bridge/webapp.py) and allows styles with that nonce only.
const NONCE = "__CSP_NONCE__";

export default defineConfig({
  plugins: [react()],
  html: { cspNonce: NONCE },
  build: {
    // No inline scripts, no data: module preload polyfill (the CSP forbids inline script).
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    css: false,
  },
});
