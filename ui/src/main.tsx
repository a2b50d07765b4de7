import { render } from "preact";
import { App } from "./App.tsx";
import "./styles.css";

// When the bundle started running, after the page and the script loaded: the speed benchmark reads it.
performance.mark("luminate:app-start");
render(<App />, document.getElementById("app") as HTMLElement);
