import { render } from "preact";
import { App, type AppEnv } from "./App";
import "./styles.css";

const env: AppEnv = {
  pathname: window.location.pathname,
  search: window.location.search,
  now: () => Date.now(),
  storage: window.localStorage,
  setUrl: (search, push) => {
    const url = window.location.pathname + search;
    if (url === window.location.pathname + window.location.search) return;
    if (push) window.history.pushState(null, "", url);
    else window.history.replaceState(null, "", url);
  },
  navigate: (href) => window.location.assign(href),
};

const root = document.getElementById("root");
if (root) render(<App env={env} />, root);
