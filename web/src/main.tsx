import "@radix-ui/themes/styles.css";
import "./app.css";
import { setNonce } from "get-nonce";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";

// The bridge puts a fresh nonce in this meta tag (and in its style-src): the few
// <style> elements UI libraries add at run time (scroll lock of dialogs) carry it.
const nonce = document.querySelector<HTMLMetaElement>('meta[property="csp-nonce"]')?.nonce;
if (nonce) setNonce(nonce);

const root = document.getElementById("root");
if (!root) throw new Error("no #root element");
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
