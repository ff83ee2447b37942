/* The report's explorer: draws the chosen unit's numbers (embedded as JSON) as SVG.
   No libraries and no network: the page must work from a shared drive or an e-mail. */
(function () {
  "use strict";
  var source = document.getElementById("explorer-data");
  if (!source) { return; }
  var D = JSON.parse(source.textContent);
  var T = D.strings;
  var NS = "http://www.w3.org/2000/svg";
  var number = new Intl.NumberFormat(D.lang === "nb" ? "nb-NO" : "en-GB",
                                     { maximumFractionDigits: 0 });
  var decimal = new Intl.NumberFormat(D.lang === "nb" ? "nb-NO" : "en-GB",
                                      { maximumFractionDigits: 1, minimumFractionDigits: 1 });
  var COLOURS = { band95: "#c6dbef", band80: "#9ecae1", band50: "#6baed6", median: "#0b5394",
                  history: "#222", official: "#d55e00", male: "#4477aa", female: "#cc6677",
                  vital: "#009e73", migration: "#0072b2", attract: "#e69f00",
                  noise: "#999999", total: "#222222" };

  function fill(text, fields) {
    return text.replace(/\{(\w+)\}/g, function (_, key) {
      return fields[key] === undefined ? "" : fields[key];
    });
  }
  function fmt(value) { return number.format(value).replace("-", "\u2212"); }
  function short(value) {
    var a = Math.abs(value);
    if (a >= 1e6) { return decimal.format(value / 1e6) + (D.lang === "nb" ? " mill." : " m"); }
    if (a >= 1e4) { return fmt(Math.round(value / 1e3)) + (D.lang === "nb" ? " k" : "k"); }
    return fmt(value);
  }
  function svg(tag, attrs, parent) {
    var node = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function text(parent, x, y, label, attrs) {
    var node = svg("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    node.textContent = label;
    return node;
  }
  function scale(d0, d1, r0, r1) {
    return function (v) { return d1 === d0 ? (r0 + r1) / 2 : r0 + (v - d0) * (r1 - r0) / (d1 - d0); };
  }
  function ticks(lo, hi, n) {
    var span = hi - lo || Math.abs(hi) || 1;
    var step = Math.pow(10, Math.floor(Math.log10(span / n)));
    [1, 2, 2.5, 5, 10].some(function (m) {
      if (span / (step * m) <= n) { step = step * m; return true; }
      return false;
    });
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) { out.push(v); }
    return out;
  }
  function width(node) { return Math.max(240, Math.floor(node.clientWidth || 600)); }
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }
  function legend(node, items) {
    var box = document.createElement("div");
    box.className = "legend";
    items.forEach(function (item) {
      var span = document.createElement("span");
      span.style.setProperty("--swatch", item[1]);
      span.textContent = item[0];
      box.appendChild(span);
    });
    node.appendChild(box);
  }
  function sizeClass(population) {
    if (population < 2000) { return "<2k"; }
    if (population < 5000) { return "2-5k"; }
    if (population < 20000) { return "5-20k"; }
    if (population < 50000) { return "20-50k"; }
    return "50k+";
  }

  function drawFan(node, unit, entry) {
    clear(node);
    var w = width(node), h = Math.round(Math.min(420, Math.max(230, w * 0.5)));
    var m = { l: 64, r: 22, t: 10, b: 28 };
    var years = D.years, hy = D.history_years, fan = entry.fan;
    var official = entry.official;
    if (official) {
      // Only the years the chart spans: an official series may run past the projection.
      var keep = official.years.map(function (yr) {
        return yr >= Math.min(D.history_years[0], D.years[0]) && yr <= D.years[D.years.length - 1];
      });
      official = { vintage: official.vintage, alternative: official.alternative,
                   years: official.years.filter(function (_, i) { return keep[i]; }),
                   values: official.values.filter(function (_, i) { return keep[i]; }) };
      if (!official.years.length) { official = null; }
    }
    var all = [].concat(fan[0], fan[6], entry.history.filter(function (v) { return v > 0; }));
    if (official) { all = all.concat(official.values); }
    var lo = Math.min.apply(null, all), hi = Math.max.apply(null, all);
    var pad = (hi - lo) * 0.05 || hi * 0.05 || 1;
    var x0 = Math.min(hy[0], years[0]), x1 = years[years.length - 1];
    var x = scale(x0, x1, m.l, w - m.r), y = scale(lo - pad, hi + pad, h - m.b, m.t);
    var root = svg("svg", { width: w, height: h, viewBox: "0 0 " + w + " " + h,
                            role: "img", "aria-label": T.fan_title + ": " + unit.name }, node);
    ticks(lo - pad, hi + pad, 5).forEach(function (v) {
      svg("line", { x1: m.l, x2: w - m.r, y1: y(v), y2: y(v), stroke: "#e5e5e5" }, root);
      text(root, m.l - 6, y(v) + 4, short(v), { "text-anchor": "end" });
    });
    var step = w < 500 ? 10 : 5;
    for (var yr = Math.ceil(x0 / step) * step; yr <= x1; yr += step) {
      text(root, x(yr), h - 8, String(yr), { "text-anchor": "middle" });
    }
    [[0, 6, COLOURS.band95], [1, 5, COLOURS.band80], [2, 4, COLOURS.band50]].forEach(function (b) {
      var pts = years.map(function (yr, i) { return x(yr) + "," + y(fan[b[0]][i]); });
      for (var i = years.length - 1; i >= 0; i--) { pts.push(x(years[i]) + "," + y(fan[b[1]][i])); }
      svg("polygon", { points: pts.join(" "), fill: b[2], stroke: "none" }, root);
    });
    var line = function (xs, ys, colour, extra) {
      var pts = xs.map(function (v, i) { return x(v) + "," + y(ys[i]); }).join(" ");
      return svg("polyline", Object.assign({ points: pts, fill: "none", stroke: colour,
                                             "stroke-width": 2 }, extra || {}), root);
    };
    var keep = hy.map(function (_, i) { return entry.history[i] > 0; });
    line(hy.filter(function (_, i) { return keep[i]; }),
         entry.history.filter(function (_, i) { return keep[i]; }), COLOURS.history);
    line(years, fan[3], COLOURS.median);
    var items = [[T.observed, COLOURS.history], [T.median, COLOURS.median],
                 [T.band50, COLOURS.band50], [T.band80, COLOURS.band80], [T.band95, COLOURS.band95]];
    if (official) {
      line(official.years, official.values, COLOURS.official, { "stroke-dasharray": "6 4" });
      items.push([fill(T.official, { alt: official.alternative, vintage: official.vintage }),
                  COLOURS.official]);
    }
    legend(node, items);
  }

  function cell(q, yearIndex, groupIndex) {
    var lo = q[0][yearIndex][groupIndex], mid = q[1][yearIndex][groupIndex],
        hi = q[2][yearIndex][groupIndex];
    return lo === hi ? fmt(mid) : fmt(mid) + "<br><small>" + fmt(lo) + "\u2013" + fmt(hi) + "</small>";
  }
  function drawTable(node, entry) {
    clear(node);
    if (!entry.ages) { node.textContent = T.no_ages; return; }
    var years = D.table_years, base = D.base, last = years[years.length - 1];
    var major = function (yr) { return yr === base || yr === last || yr === 2030; };
    var head = "<thead><tr><th>" + T.age_group + "</th>" + years.map(function (yr) {
      return "<th" + (major(yr) ? "" : " class=\"y-minor\"") + ">" + yr + "</th>";
    }).join("") + "</tr></thead>";
    var rows = D.age_groups.map(function (g, gi) {
      return "<tr><td>" + g + "</td>" + years.map(function (yr, yi) {
        return "<td" + (major(yr) ? "" : " class=\"y-minor\"") + ">" + cell(entry.ages, yi, gi) + "</td>";
      }).join("") + "</tr>";
    });
    var total = "<tr><th>" + T.total + "</th>" + years.map(function (yr) {
      var i = D.years.indexOf(yr);
      var q = [[[entry.fan[1][i]]], [[entry.fan[3][i]]], [[entry.fan[5][i]]]];
      return "<th" + (major(yr) ? "" : " class=\"y-minor\"") + ">" + cell(q, 0, 0) + "</th>";
    }).join("") + "</tr>";
    node.innerHTML = "<table class=\"data\">" + head + "<tbody>" + rows.join("") + total +
      "</tbody></table>";
  }

  function drawPyramids(node, entry) {
    clear(node);
    if (!entry.pyramid) { node.textContent = T.no_ages; return; }
    var years = Object.keys(entry.pyramid);
    var male = D.sexes.indexOf("male"), female = D.sexes.indexOf("female");
    var max = 1;
    years.forEach(function (yr) {
      entry.pyramid[yr][2].forEach(function (row) { max = Math.max(max, row[0], row[1]); });
    });
    (entry.pyramid_observed || []).forEach(function (row) { max = Math.max(max, row[0], row[1]); });
    var groups = D.pyramid_groups;
    years.forEach(function (yr) {
      var box = document.createElement("div");
      box.className = "chart";
      var title = document.createElement("h3");
      title.textContent = fill(T.pyramid_title, { year: yr });
      box.appendChild(title);
      node.appendChild(box);
      var w = width(box), bar = 13, m = { t: 18, b: 22 }, mid = w / 2, gap = 22;
      var h = m.t + groups.length * bar + m.b;
      var root = svg("svg", { width: w, height: h, viewBox: "0 0 " + w + " " + h, role: "img",
                              "aria-label": title.textContent }, box);
      var xr = scale(0, max, 0, mid - gap - 4);
      text(root, 4, 12, T.men, {});
      text(root, w - 4, 12, T.women, { "text-anchor": "end" });
      var q = entry.pyramid[yr];
      groups.forEach(function (g, i) {
        var top = m.t + (groups.length - 1 - i) * bar;
        [[male, -1, COLOURS.male], [female, 1, COLOURS.female]].forEach(function (s) {
          var med = q[1][i][s[0]], lo = q[0][i][s[0]], hi = q[2][i][s[0]];
          var start = mid + s[1] * gap;
          svg("rect", { x: s[1] < 0 ? start - xr(med) : start, y: top + 1, width: xr(med),
                        height: bar - 2, fill: s[2], opacity: 0.75 }, root);
          svg("line", { x1: start + s[1] * xr(lo), x2: start + s[1] * xr(hi), y1: top + bar / 2,
                        y2: top + bar / 2, stroke: "#222", "stroke-width": 1 }, root);
          if (entry.pyramid_observed) {
            var obs = entry.pyramid_observed[i][s[0]];
            svg("rect", { x: s[1] < 0 ? start - xr(obs) : start, y: top + 1, width: xr(obs),
                          height: bar - 2, fill: "none", stroke: "#000", "stroke-width": 0.8 }, root);
          }
        });
        if (i % 2 === 0) { text(root, mid, top + bar - 3, g, { "text-anchor": "middle" }); }
      });
      ticks(0, max, w < 500 ? 2 : 3).forEach(function (v) {
        text(root, mid + gap + xr(v), h - 6, short(v), { "text-anchor": "middle" });
        text(root, mid - gap - xr(v), h - 6, short(v), { "text-anchor": "middle" });
      });
    });
  }

  function componentColour(key) {
    if (key === "total") { return COLOURS.total; }
    if (key === "attractiveness") { return COLOURS.attract; }
    if (key === "residual" || key === "noise") { return COLOURS.noise; }
    if (/births|deaths|fertility|mortality/.test(key)) { return COLOURS.vital; }
    return COLOURS.migration;
  }
  function drawDrivers(node, entry) {
    clear(node);
    if (!entry.drivers || !D.drivers_period) { node.textContent = T.no_drivers; return; }
    var rows = entry.drivers, names = D.components, keys = D.component_keys;
    var w = width(node), label = Math.min(210, Math.round(w * 0.42)), bar = 22;
    var m = { t: 6, b: 24, r: 14 };
    var h = m.t + rows.length * bar + m.b;
    var lo = 0, hi = 0;
    rows.forEach(function (r) { lo = Math.min(lo, r[0], r[1]); hi = Math.max(hi, r[0], r[2]); });
    var x = scale(lo, hi, label + 6, w - m.r);
    var root = svg("svg", { width: w, height: h, viewBox: "0 0 " + w + " " + h, role: "img",
                            "aria-label": fill(T.drivers_title, { first: D.drivers_period[0],
                                                                  last: D.drivers_period[1] }) },
                   node);
    svg("line", { x1: x(0), x2: x(0), y1: m.t, y2: h - m.b, stroke: "#777" }, root);
    rows.forEach(function (r, i) {
      var top = m.t + i * bar;
      var name = names[i];
      var t = text(root, label, top + bar / 2 + 4, name, { "text-anchor": "end" });
      if (keys[i] === "total") { t.setAttribute("font-weight", "bold"); }
      svg("rect", { x: Math.min(x(0), x(r[0])), y: top + 3, width: Math.abs(x(r[0]) - x(0)),
                    height: bar - 6, fill: componentColour(keys[i]) }, root);
      svg("line", { x1: x(r[1]), x2: x(r[2]), y1: top + bar / 2, y2: top + bar / 2,
                    stroke: "#222" }, root);
    });
    ticks(lo, hi, w < 500 ? 3 : 6).forEach(function (v) {
      text(root, x(v), h - 6, short(v), { "text-anchor": "middle" });
    });
  }

  function drawSources(node, unit) {
    if (!node) { return; }
    clear(node);
    var rows = D.sources && D.sources[unit.id];
    if (!rows) { node.textContent = T.no_sources; return; }
    var w = width(node), label = 44, bar = 24, m = { t: 4, b: 8, r: 8 };
    var keys = D.source_keys, names = D.source_names, colours = D.source_colours;
    var perRow = w < 500 ? 1 : 3, legendRows = Math.ceil(keys.length / perRow);
    var h = m.t + rows.length * bar + m.b + legendRows * 16;
    var x = scale(0, 100, label, w - m.r);
    var root = svg("svg", { width: w, height: h, viewBox: "0 0 " + w + " " + h, role: "img",
                            "aria-label": T.sources_title }, node);
    rows.forEach(function (row, i) {
      var top = m.t + i * bar, left = 0;
      text(root, label - 6, top + bar / 2 + 4, String(D.source_years[i]), { "text-anchor": "end" });
      row.forEach(function (value, k) {
        if (value <= 0) { return; }
        svg("rect", { x: x(left), y: top + 3, width: x(left + value) - x(left), height: bar - 6,
                      fill: colours[k] }, root);
        if (value >= 10) {
          text(root, (x(left) + x(left + value)) / 2, top + bar / 2 + 4, value + " %",
               { "text-anchor": "middle", fill: "#fff" });
        }
        left += value;
      });
    });
    var cellWidth = (w - label) / perRow;
    keys.forEach(function (key, k) {
      var lx = label + (k % perRow) * cellWidth;
      var ly = m.t + rows.length * bar + m.b + Math.floor(k / perRow) * 16;
      svg("rect", { x: lx, y: ly - 9, width: 10, height: 10, fill: colours[k] }, root);
      text(root, lx + 14, ly, names[k], {});
    });
  }

  // A housing plan's effect: shown for the municipalities with a plan, hidden elsewhere.
  function drawHousing(unit) {
    var box = document.getElementById("housing-box");
    if (!box) { return; }
    var node = document.getElementById("housing");
    var entry = D.housing && D.housing[unit.id];
    clear(node);
    box.hidden = !entry;
    if (!entry) { return; }
    var years = D.housing_years, band = entry.band;
    var w = width(node), h = Math.round(Math.min(300, Math.max(190, w * 0.35)));
    var m = { l: 56, r: 16, t: 10, b: 26 };
    var lo = Math.min(0, Math.min.apply(null, band[0])), hi = Math.max(0, Math.max.apply(null, band[2]));
    var pad = (hi - lo) * 0.05 || 1;
    var x = scale(years[0], years[years.length - 1], m.l, w - m.r);
    var y = scale(lo - pad, hi + pad, h - m.b, m.t);
    var root = svg("svg", { width: w, height: h, viewBox: "0 0 " + w + " " + h, role: "img",
                            "aria-label": T.housing_title + ": " + unit.name }, node);
    ticks(lo - pad, hi + pad, 4).forEach(function (v) {
      if (Math.abs(v) < 1e-9) { v = 0; }  // no "−0" from rounding
      svg("line", { x1: m.l, x2: w - m.r, y1: y(v), y2: y(v), stroke: v === 0 ? "#777" : "#e5e5e5" },
          root);
      text(root, m.l - 6, y(v) + 4, short(v), { "text-anchor": "end" });
    });
    var step = w < 500 ? 10 : 5;
    for (var yr = Math.ceil(years[0] / step) * step; yr <= years[years.length - 1]; yr += step) {
      text(root, x(yr), h - 8, String(yr), { "text-anchor": "middle" });
    }
    var pts = years.map(function (yr, i) { return x(yr) + "," + y(band[0][i]); });
    for (var i = years.length - 1; i >= 0; i--) { pts.push(x(years[i]) + "," + y(band[2][i])); }
    svg("polygon", { points: pts.join(" "), fill: COLOURS.band80, stroke: "none" }, root);
    svg("polyline", { points: years.map(function (yr, i) { return x(yr) + "," + y(band[1][i]); })
                      .join(" "), fill: "none", stroke: COLOURS.median, "stroke-width": 2 }, root);
    document.getElementById("housing-caption").textContent = fill(T.housing_caption, {
      extra: fmt(entry.extra), first: D.housing_plan[0], last: D.housing_plan[1],
      share: D.housing_share, draws: D.housing_draws });
  }

  function keyNumbers(node, entry) {
    var years = D.years, last = years.length - 1;
    var now = entry.history[entry.history.length - 1] || entry.fan[3][0];
    var values = [
      [fill(T.key_now, { base: D.base }), fmt(now)],
      [fill(T.key_end, { end: years[last] }), fmt(entry.fan[3][last])],
      [fill(T.key_band, { end: years[last] }), fmt(entry.fan[1][last]) + "\u2013" + fmt(entry.fan[5][last])],
      [fill(T.key_growth, { end: years[last] }), Math.round(entry.growth * 100) + " %"]
    ];
    node.innerHTML = "";
    values.forEach(function (v) {
      var box = document.createElement("div");
      var l = document.createElement("span"); l.className = "label"; l.textContent = v[0];
      var n = document.createElement("span"); n.className = "value"; n.textContent = v[1];
      box.appendChild(l); box.appendChild(n); node.appendChild(box);
    });
  }

  // The backtest's sentence for units of this kind: a municipality's size class, the
  // counties, the regions; the nation quotes the counties (built in Python: bands.py).
  function coverageSentence(unit, entry) {
    var c = D.coverage;
    if (!c) { return T.coverage_nominal; }
    var notes = c.notes;
    if (unit.kind === "municipality") {
      var now = entry.history[entry.history.length - 1] || entry.fan[3][0];
      return notes[sizeClass(now)] || notes.all;
    }
    return notes[unit.kind] || notes.all;
  }

  var units = {};
  D.units.forEach(function (u) { units[u.id] = u; });
  var current = null;
  function show(id) {
    var unit = units[id] || D.units[0], entry = D.data[unit.id];
    current = unit.id;
    document.getElementById("unit-name").textContent = unit.name +
      (unit.code ? " (" + unit.code + ")" : "");
    keyNumbers(document.getElementById("key-numbers"), entry);
    drawFan(document.getElementById("fan"), unit, entry);
    document.getElementById("fan-caption").textContent =
      fill(T.fan_caption, { coverage: coverageSentence(unit, entry) });
    drawTable(document.getElementById("age-table"), entry);
    drawPyramids(document.getElementById("pyramids"), entry);
    drawDrivers(document.getElementById("drivers"), entry);
    drawSources(document.getElementById("sources"), unit);
    drawHousing(unit);
    var period = D.drivers_period;
    document.getElementById("drivers-title").textContent = period
      ? fill(T.drivers_title, { first: period[0], last: period[1] }) : "";
  }

  var picker = document.getElementById("unit-picker");
  var groups = {};
  ["nation", "municipality", "county", "region"].forEach(function (kind) {
    var group = document.createElement("optgroup");
    group.label = T["group_" + kind];
    groups[kind] = group;
    picker.appendChild(group);
  });
  D.units.forEach(function (u) {
    var option = document.createElement("option");
    option.value = u.id;
    option.textContent = u.name + (u.code && u.kind !== "region" ? " (" + u.code + ")" : "");
    groups[u.kind].appendChild(option);
  });
  Object.keys(groups).forEach(function (k) {
    if (!groups[k].children.length) { picker.removeChild(groups[k]); }
  });
  var wanted = (location.hash.match(/unit=([\w]+)/) || [])[1];
  picker.value = units[wanted] ? wanted : D.units[0].id;
  picker.addEventListener("change", function () {
    show(picker.value);
    if (history.replaceState) { history.replaceState(null, "", "#unit=" + picker.value); }
  });
  show(picker.value);
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { show(current); }, 150);
  });

  // Figures open full size in an overlay (the page's own copy; nothing is fetched).
  var zoom = document.createElement("div");
  zoom.className = "zoom";
  zoom.setAttribute("role", "dialog");
  var big = document.createElement("img");
  big.alt = "";
  zoom.appendChild(big);
  document.body.appendChild(zoom);
  zoom.addEventListener("click", function () { zoom.classList.remove("open"); big.removeAttribute("src"); });
  document.querySelectorAll("figure img").forEach(function (img) {
    img.title = T.open_full;
    img.addEventListener("click", function () {
      big.src = img.src; big.alt = img.alt; zoom.classList.add("open");
    });
  });
}());
