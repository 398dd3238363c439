/* Guided session: one exercise at a time, a hold countdown, a repetition
   counter and a rest countdown. Enhances a page that works without it
   (all steps listed, then a "Done" button). No sound; keeps the screen on
   where the browser allows it. Every word shown comes from the page
   (data-t-* attributes), so it is translated with the rest of the app. */
(function () {
  "use strict";

  var TICK_MS = 200;

  function text(root, key, values) {
    var value = root.getAttribute("data-t-" + key) || "";
    Object.keys(values || {}).forEach(function (name) {
      value = value.replace("{" + name + "}", values[name]);
    });
    return value;
  }

  function clock(seconds) {
    seconds = Math.max(0, Math.ceil(seconds));
    if (seconds < 60) return String(seconds);
    var minutes = Math.floor(seconds / 60);
    var rest = seconds % 60;
    return minutes + ":" + (rest < 10 ? "0" : "") + rest;
  }

  var wakeLock = null;
  function keepScreenOn(on) {
    if (!("wakeLock" in navigator)) return;
    if (on && !wakeLock) {
      navigator.wakeLock.request("screen").then(function (lock) {
        wakeLock = lock;
        lock.addEventListener("release", function () { wakeLock = null; });
      }).catch(function () { /* not allowed here: fine */ });
    } else if (!on && wakeLock) {
      wakeLock.release().catch(function () {});
      wakeLock = null;
    }
  }

  function buzz() {
    if (navigator.vibrate) {
      try { navigator.vibrate(150); } catch (e) { /* ignore */ }
    }
  }

  function Session(root) {
    this.root = root;
    this.sections = Array.prototype.slice.call(root.querySelectorAll("[data-exercise]"));
    this.index = 0;
    this.timerId = null;
    this.doneForm = root.querySelector("[data-done-form]");
    var self = this;
    this.sections.forEach(function (section, i) {
      var timer = section.querySelector("[data-timer]");
      timer.hidden = false;
      section.querySelector("[data-action='toggle']").addEventListener("click", function () {
        self.toggle();
      });
      section.querySelector("[data-action='next']").addEventListener("click", function () {
        self.next();
      });
      if (i !== 0) section.setAttribute("data-inactive", "");
    });
    if (this.sections.length) this.reset();
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && self.running) keepScreenOn(true);
    });
  }

  Session.prototype.current = function () { return this.sections[this.index]; };

  Session.prototype.el = function (selector) { return this.current().querySelector(selector); };

  Session.prototype.reset = function () {
    var s = this.current();
    this.reps = parseInt(s.getAttribute("data-reps"), 10) * parseInt(s.getAttribute("data-sets") || "1", 10);
    this.hold = parseInt(s.getAttribute("data-hold"), 10) || 0;
    this.rest = parseInt(s.getAttribute("data-rest"), 10) || 0;
    this.rep = 1;
    this.state = "ready";
    this.running = false;
    this.remaining = this.hold;
    this.render();
  };

  Session.prototype.render = function () {
    var root = this.root;
    var timer = this.el("[data-timer]");
    timer.setAttribute("data-state", this.running ? this.state : (this.state === "done" ? "done" : "ready"));
    var phase = this.el("[data-phase]");
    var count = this.el("[data-count]");
    var reps = this.el("[data-rep-label]");
    var toggle = this.el("[data-action='toggle']");
    var isLast = this.index + 1 >= this.sections.length;
    this.el("[data-action='next']").textContent = text(
      root, this.state === "done" ? (isLast ? "finish" : "next") : "skip"
    );
    if (this.state === "done") {
      phase.textContent = text(root, "exercise-done");
      count.textContent = "\u2713";
      toggle.hidden = true;
    } else {
      var label = this.state === "hold" ? "hold" : this.state === "rest" ? "rest" : "ready";
      if (!this.running && this.state !== "ready") label = "paused";
      phase.textContent = text(root, label);
      count.textContent = clock(this.remaining);
      toggle.hidden = false;
      toggle.textContent = text(root, this.running ? "pause" : (this.state === "ready" ? "start" : "resume"));
    }
    reps.textContent = text(root, "rep", { n: Math.min(this.rep, this.reps), total: this.reps });
  };

  Session.prototype.toggle = function () {
    if (this.state === "done") return;
    if (this.running) {
      this.pause();
    } else {
      if (this.state === "ready") this.begin("hold", this.hold);
      else this.resume();
    }
  };

  Session.prototype.begin = function (state, seconds) {
    this.state = state;
    this.remaining = seconds;
    this.resume();
  };

  Session.prototype.resume = function () {
    var self = this;
    this.running = true;
    this.endsAt = Date.now() + this.remaining * 1000;
    keepScreenOn(true);
    clearInterval(this.timerId);
    this.timerId = setInterval(function () { self.tick(); }, TICK_MS);
    this.render();
  };

  Session.prototype.pause = function () {
    clearInterval(this.timerId);
    this.remaining = Math.max(0, (this.endsAt - Date.now()) / 1000);
    this.running = false;
    keepScreenOn(false);
    this.render();
  };

  Session.prototype.tick = function () {
    this.remaining = (this.endsAt - Date.now()) / 1000;
    if (this.remaining > 0) {
      this.el("[data-count]").textContent = clock(this.remaining);
      return;
    }
    buzz();
    if (this.state === "hold") {
      if (this.rep >= this.reps) {
        this.finishExercise();
        return;
      }
      if (this.rest > 0) {
        this.begin("rest", this.rest);
      } else {
        this.rep += 1;
        this.begin("hold", this.hold);
      }
    } else if (this.state === "rest") {
      this.rep += 1;
      this.begin("hold", this.hold);
    }
  };

  Session.prototype.finishExercise = function () {
    clearInterval(this.timerId);
    this.running = false;
    this.state = "done";
    keepScreenOn(false);
    this.render();
    var next = this.el("[data-action='next']");
    next.focus();
  };

  Session.prototype.next = function () {
    clearInterval(this.timerId);
    this.running = false;
    keepScreenOn(false);
    if (this.index + 1 < this.sections.length) {
      this.current().setAttribute("data-inactive", "");
      this.index += 1;
      this.current().removeAttribute("data-inactive");
      this.reset();
      this.current().scrollIntoView({ block: "start" });
      var heading = this.current().querySelector("h2");
      if (heading) {
        heading.setAttribute("tabindex", "-1");
        heading.focus({ preventScroll: true });
      }
    } else {
      this.state = "done";
      this.render();
      if (this.doneForm) {
        this.doneForm.scrollIntoView({ block: "center" });
        var button = this.doneForm.querySelector("button");
        if (button) button.focus({ preventScroll: true });
      }
    }
  };

  function init(scope) {
    scope = scope || document;
    var roots = Array.prototype.slice.call(scope.querySelectorAll("[data-guided]"));
    if (scope.matches && scope.matches("[data-guided]")) roots.push(scope);
    roots.forEach(function (root) {
      if (root.getAttribute("data-guided-ready")) return;
      root.setAttribute("data-guided-ready", "1");
      new Session(root);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  // Pages loaded by htmx (boosted links) bring the guided page in without a reload.
  document.addEventListener("htmx:load", function (event) { init(event.target); });
})();
