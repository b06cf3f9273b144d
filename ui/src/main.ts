import { mount } from "svelte";
import "./app.css";
import App from "./App.svelte";
import { preloadHighlighter } from "./lib/highlight.svelte";
import { guardLinks } from "./lib/links";

const target = document.getElementById("app");
if (!target) throw new Error("talaria: #app element missing from index.html");

guardLinks();
// Highlighting grammars load once the window is idle, not in the middle of a streamed reply.
preloadHighlighter();

export default mount(App, { target });
