// The page around a view: toolbar, disconnected banner, toasts and the modal overlay.

import { h, onPage, replaceChildren, sameControl } from "./dom.js";
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
    // A tap on the backdrop (outside the panel) or Esc closes the dialog.
    this.overlay.addEventListener("click", (event) => {
      if (event.target === this.overlay) this.closeModal();
    });
    this.overlay.addEventListener("cancel", (event) => {
      event.preventDefault();
      this.closeModal();
    });
    applyTextSize(storedTextSize());
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

  /** "Failed: <why>" for an action the daemon refused (bound: pass it as a callback). */
  failed = (err) => {
    this.toast(`${t("failed")}: ${err.message}`);
  };

  /** Fill the toolbar: a title, then the view's controls and the text size. */
  setToolbar(title, ...controls) {
    replaceChildren(this.toolbar, h("h1.title", { text: title }), h("div.controls", null, ...controls, textSizeControl()));
  }

  /**
   * Open a modal <dialog> named by the content's heading: focus moves into it and goes back
   * where it was on close. `keys(action)` gets bump-bar actions while it is open.
   */
  openModal(content, keys) {
    if (this.modal) this.closeModal();
    const returnTo = document.activeElement;
    // The opener's card may be drawn anew while the dialog is open: find its control again then.
    this.modal = { keys: keys || null, returnTo, again: returnTo ? sameControl(returnTo) : null };
    const heading = content.querySelector("h1, h2, h3");
    if (heading && !heading.id) heading.id = "modal-title";
    if (heading) this.overlay.setAttribute("aria-labelledby", heading.id);
    else this.overlay.removeAttribute("aria-labelledby");
    replaceChildren(this.overlay, h("div.modal", null, content));
    this.overlay.showModal();
  }

  closeModal() {
    if (!this.modal) return;
    const { returnTo, again } = this.modal;
    this.modal = null;
    if (this.overlay.open) this.overlay.close();
    this.overlay.textContent = "";
    const target = onPage(returnTo, again);
    if (target && typeof target.focus === "function") target.focus();
  }
}

const TEXT_SIZES = ["s", "m", "l"];

/** This screen's text size (each screen URL keeps its own, in localStorage). */
function storedTextSize() {
  const stored = localStorage.getItem(`kds.textSize:${location.pathname}`);
  return TEXT_SIZES.includes(stored) ? stored : "m";
}

function applyTextSize(size) {
  document.documentElement.dataset.textSize = size;
}

/** S / M / L for screens read from two metres; a relayout follows like after a resize. */
function textSizeControl() {
  const select = h(
    "select.text-size",
    { "aria-label": t("textSize"), title: t("textSize") },
    TEXT_SIZES.map((size) => h("option", { value: size, text: size.toUpperCase() })),
  );
  select.value = storedTextSize();
  select.addEventListener("change", () => {
    localStorage.setItem(`kds.textSize:${location.pathname}`, select.value);
    applyTextSize(select.value);
    dispatchEvent(new Event("resize"));
  });
  return select;
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
