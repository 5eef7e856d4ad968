// Video page: plays the video with hls.js through the viewer's own player
// gateway when one of this account's players answers on loopback, else
// through the platform's fallback playlist. The chosen path is shown, and
// every hls.js error is shown and kept in window.swarmcastPlayer.errors
// (the browser tests read it).
"use strict";
(function () {
  const box = document.getElementById("player");
  if (!box) return;
  const video = document.getElementById("video");
  const statusEl = document.getElementById("play-status");
  const errorEl = document.getElementById("play-error");
  const videoID = box.dataset.video;
  const fallback = box.dataset.fallback;
  const state = { source: "", url: "", errors: [], fatal: false };
  window.swarmcastPlayer = state;

  const PROBE_MS = 1500;
  const PLAYERS_PATH = box.dataset.players || "/api/v1/accounts/players";

  function say(text) { statusEl.textContent = text; }
  function fail(text) {
    errorEl.hidden = false;
    errorEl.textContent = text;
  }

  // fetchTimeout is fetch bounded by ms.
  async function fetchTimeout(url, ms, opts) {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), ms);
    try {
      return await fetch(url, Object.assign({ signal: ctl.signal }, opts || {}));
    } finally {
      clearTimeout(t);
    }
  }

  // gateways lists this account's running players' gateway URLs, most
  // recent first ([] when the coordinator knows none).
  async function gateways() {
    try {
      const resp = await fetchTimeout(PLAYERS_PATH, 3000, { credentials: "same-origin", cache: "no-store" });
      if (!resp.ok) return [];
      const body = await resp.json();
      return (body.players || []).map((p) => p.gateway).filter((g) => typeof g === "string" && /^http:\/\/(127\.0\.0\.1|\[::1\]):\d+$/.test(g));
    } catch (e) {
      return [];
    }
  }

  async function pickSource() {
    for (const gw of await gateways()) {
      try {
        const resp = await fetchTimeout(gw + "/healthz", PROBE_MS, { mode: "cors", cache: "no-store" });
        if (resp.ok) {
          return { source: "gateway", url: gw + "/videos/" + videoID + "/master.m3u8", label: "through your own player's gateway at " + gw };
        }
      } catch (e) { /* not running or not reachable: try the next */ }
    }
    return { source: "fallback", url: fallback, label: "from the platform (no player of yours is running on this computer)" };
  }

  function play(src) {
    state.source = src.source;
    state.url = src.url;
    box.dataset.source = src.source;
    say("Playing " + src.label + ".");
    if (window.Hls && Hls.isSupported()) {
      const hls = new Hls({ enableWorker: true, lowLatencyMode: false });
      state.hls = hls;
      hls.on(Hls.Events.ERROR, function (_ev, data) {
        // at: where playback was; hole: the gap (s) hls.js jumped, if any.
        state.errors.push({ type: data.type, details: data.details, fatal: !!data.fatal, at: video.currentTime, hole: data.hole || 0 });
        if (data.fatal) {
          state.fatal = true;
          fail("Playback failed (" + data.type + ": " + data.details + "). Reload the page to try again.");
        } else {
          say("Playing " + src.label + " — recovered from " + data.details + ".");
        }
      });
      hls.loadSource(src.url);
      hls.attachMedia(video);
      // Start once the first fragment is buffered, at its first frame:
      // TS segments start a little after 0 (the encoder's priming delay),
      // and playing from 0 would stall in that gap until hls.js jumps it.
      hls.once(Hls.Events.FRAG_BUFFERED, function () {
        if (video.buffered.length > 0 && video.currentTime < video.buffered.start(0)) {
          video.currentTime = video.buffered.start(0);
        }
        video.play().catch(function () { say("Press play to start (" + src.label + ")."); });
      });
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = src.url;
      video.play().catch(function () {});
    } else {
      fail("This browser cannot play HLS video (no Media Source Extensions).");
    }
  }

  pickSource().then(play);
})();
