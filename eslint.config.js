import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", ".stack/", ".venv/", "training/", "schemas/types.generated.ts"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The pages' plain ES modules (web/) run in a browser, served as written: its globals, no build.
    files: ["web/**/*.js"],
    languageOptions: {
      sourceType: "module",
      globals: Object.fromEntries(
        [
          "window", "document", "location", "history", "navigator", "sessionStorage", "localStorage", "fetch",
          "WebSocket", "EventSource", "URL", "URLSearchParams", "TextEncoder", "crypto", "console", "setTimeout",
          "clearTimeout", "setInterval", "clearInterval", "requestAnimationFrame", "performance", "AbortController",
          "FormData", "Headers", "HTMLElement", "Event", "CustomEvent", "Intl", "Node", "MutationObserver", "DOMParser",
          "queueMicrotask", "structuredClone", "Blob", "Response", "Request", "AbortSignal", "confirm", "alert",
        ].map((name) => [name, "readonly"]),
      ),
    },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
);
