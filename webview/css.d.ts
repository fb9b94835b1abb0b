// CSS imported from a webview entry is bundled by esbuild into a .css file beside the script.
declare module '*.css';
