// The page around a view: toolbar, disconnected banner, toasts and the modal overlay.

import { h, replaceChildren } from "./dom.js";
import { t } from "./i18n.js";

const TOAST_MS = 4000;

export class Chrome {
  constructor(doc) {
    this.banner = doc.getElementById("banner");
    this.toolbar = doc.getElementById("toolbar");
    this.view = doc.getElementById("view");
    this.overlay = doc.getElementById("overlay");
    this.toastEl = doc.getElementById("toast");
    this._toastTimer = null;
    this.modal = null;
    this.connected = null;
    // Until the feed says otherwise, we are connecting.
    this.setConnected(false, t("connecting"));
    this.overlay.addEventListener("click", (event) => {
      if (event.target === this.overlay) this.closeModal();
    });
  }

  /** Show or hide the banner; the body carries the state for styling and tests. */
  setConnected(connected, text) {
    this.connected = connected;
    document.body.dataset.connected = connected ? "yes" : "no";
    this.banner.textContent = text || t("disconnected");
    this.banner.hidden = connected;
  }

  /** A short message at the bottom of the screen. */
  toast(message) {
    this.toastEl.textContent = message;
    this.toastEl.hidden = false;
    clearTimeout(this._toastTimer);
    this._toastTimer = setTimeout(() => {
      this.toastEl.hidden = true;
    }, TOAST_MS);
  }

  /** Fill the toolbar: a title, then left and right groups of controls. */
  setToolbar(title, ...controls) {
    replaceChildren(this.toolbar, h("h1.title", { text: title }), h("div.controls", null, ...controls));
  }

  /** Open a modal: `content` is an element; `keys(action)` gets bump-bar actions while it is open. */
  openModal(content, keys) {
    this.modal = { keys: keys || null };
    replaceChildren(this.overlay, h("div.modal", { role: "dialog", "aria-modal": "true" }, content));
    this.overlay.hidden = false;
  }

  closeModal() {
    this.modal = null;
    this.overlay.hidden = true;
    this.overlay.textContent = "";
  }
}

/** The sound toggle and the one-tap "enable sound" button, kept in sync with `sound`. */
export function soundControls(sound) {
  const toggle = h("button.sound-toggle", { type: "button", onclick: () => sound.toggle() });
  const enable = h("button.enable-sound", { type: "button", onclick: () => sound.unlock() });
  const sync = () => {
    toggle.textContent = sound.enabled ? t("soundOn") : t("soundOff");
    toggle.setAttribute("aria-pressed", sound.enabled ? "true" : "false");
    enable.textContent = t("enableSound");
    // While the browser blocks audio the prompt stands in for the toggle, never beside "Sound on".
    enable.hidden = !sound.blocked;
    toggle.hidden = sound.blocked;
  };
  sound.onChange(sync);
  // Any tap or key on the page counts as the gesture browsers want before audio.
  const unlockOnce = () => {
    if (sound.enabled) sound.unlock();
  };
  addEventListener("pointerdown", unlockOnce, { once: true });
  addEventListener("keydown", unlockOnce, { once: true });
  sync();
  return [enable, toggle];
}
