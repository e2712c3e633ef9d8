/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vite";

// The bridge replaces this placeholder in index.html with a fresh nonce per response
// (rest_bridge/webapp.py) and allows styles with that nonce only.
const NONCE = "__CSP_NONCE__";

/**
 * Some UI primitives render a fixed <style> element (Radix ScrollArea and Select hide
 * native scrollbars this way) without a way to pass our nonce. Their contents are
 * constant, so the build lists their SHA-256 in dist/csp-hashes.json and the bridge
 * allows exactly those in style-src; anything else inline stays blocked. The browser
 * tests fail on any CSP violation, so a library upgrade cannot drift silently.
 */
function cspStyleHashes(): Plugin {
  const literal = /"style",\{dangerouslySetInnerHTML:\{__html:("(?:[^"\\]|\\.)*")\}/g;
  return {
    name: "csp-style-hashes",
    apply: "build",
    generateBundle(_options, bundle) {
      const hashes = new Set<string>();
      for (const chunk of Object.values(bundle)) {
        if (chunk.type !== "chunk") continue;
        for (const match of chunk.code.matchAll(literal)) {
          const css = JSON.parse(match[1] ?? '""') as string;
          hashes.add(`sha256-${createHash("sha256").update(css, "utf8").digest("base64")}`);
        }
      }
      this.emitFile({
        type: "asset",
        fileName: "csp-hashes.json",
        source: JSON.stringify({ "style-src": [...hashes].sort() }, null, 2),
      });
    },
  };
}

/**
 * A gzip copy (level 9) beside every script and style sheet: the bridge sends it to
 * browsers that accept gzip (rest_bridge/webapp.py), so the bundle travels at about a
 * fifth of its size without compressing on every request.
 */
function gzipCopies(): Plugin {
  return {
    name: "gzip-copies",
    apply: "build",
    writeBundle(options, bundle) {
      const dir = options.dir ?? "dist";
      for (const file of Object.values(bundle)) {
        if (!/\.(js|css)$/.test(file.fileName)) continue;
        const source = file.type === "chunk" ? file.code : file.source;
        writeFileSync(join(dir, `${file.fileName}.gz`), gzipSync(source, { level: 9 }));
      }
    },
  };
}

export default defineConfig({
  plugins: [react(), cspStyleHashes(), gzipCopies()],
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
    // A shared machine can be slow; component tests click through real Radix widgets.
    testTimeout: 30_000,
  },
});
