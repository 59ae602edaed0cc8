// New-ticket sound with Web Audio. Browsers start audio only after a user gesture,
// so while the context is suspended the toolbar offers a one-tap "enable sound".

const STORAGE_KEY = "kds.sound";

export class Sound {
  constructor(defaultOn) {
    const stored = localStorage.getItem(STORAGE_KEY);
    this.enabled = stored === null ? Boolean(defaultOn) : stored === "on";
    this.context = null;
    this.listeners = new Set();
    this.played = 0;
    this.alarms = 0;
  }

  onChange(listener) {
    this.listeners.add(listener);
  }

  _changed() {
    for (const listener of this.listeners) listener(this);
  }

  _ensureContext() {
    if (!this.context) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      this.context = new Ctx();
      this.context.onstatechange = () => this._changed();
    }
    return this.context;
  }

  /** True when sound is on but the browser still blocks it. */
  get blocked() {
    if (!this.enabled) return false;
    const ctx = this._ensureContext();
    return !ctx || ctx.state !== "running";
  }

  /** Called from a click or key press: browsers allow resuming audio then. */
  async unlock() {
    const ctx = this._ensureContext();
    if (ctx && ctx.state !== "running") {
      try {
        await ctx.resume();
      } catch (err) {
        console.warn("kds: audio blocked", err);
      }
    }
    this._changed();
  }

  toggle() {
    this.enabled = !this.enabled;
    localStorage.setItem(STORAGE_KEY, this.enabled ? "on" : "off");
    if (this.enabled) this.unlock();
    this._changed();
  }

  /** A falling three-tone call: a ticket on screen just turned late. */
  lateAlarm() {
    if (!this.enabled) return;
    const ctx = this._ensureContext();
    if (!ctx || ctx.state !== "running") return;
    [740, 590, 440].forEach((frequency, index) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "triangle";
      osc.frequency.value = frequency;
      const t0 = ctx.currentTime + index * 0.22;
      gain.gain.setValueAtTime(0.0001, t0);
      gain.gain.exponentialRampToValueAtTime(0.5, t0 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.2);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t0);
      osc.stop(t0 + 0.22);
    });
    this.lateAlarms = (this.lateAlarms || 0) + 1;
    document.body.dataset.lateAlarms = String(this.lateAlarms);
  }

  /** Two short tones: the new-ticket chime. */
  chime() {
    if (!this._tones([880, 1320], "sine", 0.16)) return;
    this.played += 1;
    document.body.dataset.chimes = String(this.played);
  }

  /** Three low, longer tones: a printer needs someone (unlike any chime). */
  alarm() {
    if (!this._tones([520, 390, 520], "square", 0.28)) return;
    this.alarms += 1;
    document.body.dataset.alarms = String(this.alarms);
  }

  /** Play `frequencies` one after another, `step` seconds each; false when sound is off or blocked. */
  _tones(frequencies, type, step) {
    if (!this.enabled) return false;
    const ctx = this._ensureContext();
    if (!ctx || ctx.state !== "running") return false;
    const start = ctx.currentTime;
    frequencies.forEach((frequency, index) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = type;
      osc.frequency.value = frequency;
      const t0 = start + index * step;
      gain.gain.setValueAtTime(0.0001, t0);
      gain.gain.exponentialRampToValueAtTime(0.4, t0 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + step - 0.01);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t0);
      osc.stop(t0 + step);
    });
    return true;
  }
}
