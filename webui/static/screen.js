// Command screen (指挥大屏): draws the figures with ECharts and keeps them live from the server-sent event
// stream (/stats/screen/stream); a browser without EventSource polls /stats/screen/figures.json with the
// last ETag instead. Every text comes translated from the server (data-* attributes, the figures' names)
// and goes in through textContent or ECharts' own text, never as HTML.
(function () {
  "use strict";
  var root = document.getElementById("screen");
  if (!root) { return; }
  var lang = root.dataset.lang || "zh-CN";
  var status = document.getElementById("screen-status");
  var clock = document.getElementById("screen-clock");
  var charts = {};
  var figures = null;

  try {
    figures = JSON.parse(document.getElementById("screen-figures").textContent);
  } catch (e) {
    figures = null;
  }

  function say(text, bad) {
    if (!status) { return; }
    status.textContent = text;
    status.className = "screen-status" + (bad ? " bad" : "");
  }

  function tick() {
    if (clock) {
      clock.textContent = new Date().toLocaleString(lang, {
        year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
        hour12: false
      });
    }
  }

  function lookup(data, path) {
    return path.split(".").reduce(function (value, key) {
      return value === undefined || value === null ? undefined : value[key];
    }, data);
  }

  var TEXT = "#d7e3f4";
  var AXIS = "#7f93ad";
  var GRID = "rgba(127, 147, 173, 0.2)";
  var COLOURS = ["#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176", "#90a4ae", "#4db6ac"];
  var STATE_COLOURS = {
    idle: "#81c784", in_call: "#4fc3f7", on_hold: "#29b6f6", ringing: "#fff176", wrap_up: "#ffb74d",
    on_break: "#e57373", logged_out: "#546e7a"
  };

  // Too small to lay out: a wall screen's window minimised, or squeezed to 1x1 for a moment (a full-page
  // capture does that). ECharts' map cannot lay itself out in a box of no width (its view transform has no
  // inverse and it throws), so the map is drawn, and every chart resized, once the box has room again.
  var SMALLEST = 24;
  var districtsPending = false;

  function roomy(node) { return node.clientWidth >= SMALLEST && node.clientHeight >= SMALLEST; }

  function chart(id) {
    var node = document.getElementById(id);
    if (!node) { return null; }
    if (!charts[id]) {
      charts[id] = window.echarts.init(node, null, {renderer: "canvas"});
    }
    return charts[id];
  }

  function axisStyle() {
    return {
      axisLine: {lineStyle: {color: AXIS}}, axisLabel: {color: AXIS},
      splitLine: {lineStyle: {color: GRID}}
    };
  }

  function barOption(rows, horizontal) {
    var names = rows.map(function (r) { return r.name; });
    var values = rows.map(function (r) { return r.value; });
    var category = Object.assign({type: "category", data: names, inverse: horizontal}, axisStyle());
    var value = Object.assign({type: "value", minInterval: 1}, axisStyle());
    return {
      animation: false,
      grid: {left: horizontal ? 96 : 40, right: 32, top: horizontal ? 16 : 28, bottom: 28},
      tooltip: {trigger: "axis"},
      xAxis: horizontal ? value : category,
      yAxis: horizontal ? category : value,
      series: [{type: "bar", data: values, itemStyle: {color: COLOURS[0]},
                label: {show: true, position: horizontal ? "right" : "top", color: TEXT}}]
    };
  }

  // The district map: its boundaries (GeoJSON uploaded by an administrator) are fetched once per version and
  // registered with ECharts; until then, when they cannot be fetched, or without any, districts are bars.
  var maps = {};            // version -> "loading" | "ready" | "failed"
  var districtMode = null;  // "bar" or "map:<version>": what the districts chart shows now

  function mapName(version) { return "hotline-districts-" + version; }

  function loadMap(info) {
    maps[info.version] = "loading";
    fetch(info.url, {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.json();
    }).then(function (body) {
      window.echarts.registerMap(mapName(info.version), body.geojson);
      maps[info.version] = "ready";
    }).catch(function () {
      maps[info.version] = "failed";
      // Try again later: the next figures after this bring the same version back.
      window.setTimeout(function () { delete maps[info.version]; }, 30000);
    }).then(function () { draw(figures); });
  }

  function offMap(rows) {
    var note = document.getElementById("districts-off-map");
    if (!note) { return; }
    var sep = lang.indexOf("zh") === 0 ? "、" : ", ";
    note.textContent = rows.length ? (note.dataset.text || "{list}").replace("{list}", rows.map(function (r) {
      return r.name + " " + r.value;
    }).join(sep)) : "";
    note.hidden = rows.length === 0;
  }

  function districts(c, data) {
    var info = data.map;
    if (info && maps[info.version] === undefined) { loadMap(info); }
    if (!info || maps[info.version] !== "ready") {
      if (districtMode !== "bar") { c.clear(); districtMode = "bar"; }
      c.setOption(barOption(data.districts.slice(0, 12), true), {replaceMerge: ["series", "xAxis", "yAxis"]});
      offMap([]);
      return;
    }
    var counts = {};
    data.districts.forEach(function (d) { counts[d.name] = d.value; });
    var drawn = {};
    var rows = info.names.map(function (name) { drawn[name] = true; return {name: name, value: counts[name] || 0}; });
    var most = Math.max.apply(null, [1].concat(rows.map(function (r) { return r.value; })));
    var mode = "map:" + info.version;
    if (districtMode !== mode) { c.clear(); districtMode = mode; }
    c.setOption({
      animation: false,
      tooltip: {trigger: "item", formatter: "{b}: {c}"},
      visualMap: {type: "continuous", min: 0, max: most, left: 8, bottom: 8, itemHeight: 90, calculable: false,
                  text: [String(most), "0"], textStyle: {color: TEXT},
                  inRange: {color: ["#1d3b5c", "#2f7fb5", "#ffb74d", "#e57373"]}},
      series: [{
        type: "map", map: mapName(info.version), roam: false, selectedMode: false, aspectScale: 0.85,
        itemStyle: {borderColor: "#9ec9ff", borderWidth: 1},
        label: {show: true, color: "#ffffff", fontSize: 14,
                formatter: function (p) { return p.name + "\n" + (isNaN(p.value) ? 0 : p.value); }},
        emphasis: {label: {color: "#ffffff"}, itemStyle: {areaColor: "#ffb74d"}},
        data: rows
      }]
    }, {replaceMerge: ["series", "visualMap"]});
    offMap(data.districts.filter(function (d) { return !drawn[d.name]; }));
  }

  function draw(data) {
    if (!data) { return; }
    document.querySelectorAll("[data-figure]").forEach(function (node) {
      var value = lookup(data, node.dataset.figure);
      if (value !== undefined && value !== null) { node.textContent = String(value); }
    });
    if (!window.echarts) { return; }
    var c;
    if (data.calls && (c = chart("chart-service"))) {
      var rate = data.calls.rate_value;
      c.setOption({
        animation: false,
        series: [{
          type: "gauge", min: 0, max: 100, radius: "95%", center: ["50%", "58%"],
          progress: {show: true, width: 14, itemStyle: {color: rate !== null && rate < data.calls.target ? "#e57373" : "#81c784"}},
          axisLine: {lineStyle: {width: 14, color: [[data.calls.target / 100, "#5d4037"], [1, "#2e4a3a"]]}},
          axisTick: {show: false}, splitLine: {length: 8, lineStyle: {color: AXIS}},
          axisLabel: {color: AXIS, distance: 18}, pointer: {show: false},
          detail: {valueAnimation: false, color: TEXT, fontSize: 34, offsetCenter: [0, "10%"],
                   formatter: function () { return data.calls.rate; }},
          data: [{value: rate === null ? 0 : rate}]
        }]
      });
    }
    if (data.agents && (c = chart("chart-agents"))) {
      c.setOption({
        animation: false,
        tooltip: {trigger: "item"},
        legend: {orient: "vertical", right: 8, top: "middle", textStyle: {color: TEXT}},
        series: [{
          type: "pie", radius: ["42%", "72%"], center: ["38%", "50%"], avoidLabelOverlap: true,
          label: {color: TEXT, formatter: "{c}"},
          data: data.agents.map(function (a) {
            return {name: a.name, value: a.value, itemStyle: {color: STATE_COLOURS[a.state] || COLOURS[6]},
                    label: {show: a.value > 0}, labelLine: {show: a.value > 0}};
          })
        }]
      });
    }
    if ((c = chart("chart-hours"))) {
      c.setOption({
        animation: false,
        tooltip: {trigger: "axis"},
        legend: {top: 0, textStyle: {color: TEXT}},
        grid: {left: 40, right: 24, top: 32, bottom: 28},
        xAxis: Object.assign({type: "category", data: data.hours, boundaryGap: false}, axisStyle()),
        yAxis: Object.assign({type: "value", minInterval: 1}, axisStyle()),
        series: data.series.map(function (s, i) {
          return {type: "line", name: s.name, data: s.values, smooth: false, showSymbol: true,
                  itemStyle: {color: COLOURS[i]}, areaStyle: {opacity: 0.12}};
        })
      }, {replaceMerge: ["series"]});
    }
    if ((c = chart("chart-channels"))) {
      c.setOption(barOption(data.channels, false), {replaceMerge: ["series", "xAxis", "yAxis"]});
    }
    if ((c = chart("chart-districts"))) {
      districtsPending = !roomy(c.getDom());
      if (!districtsPending) { districts(c, data); }
    }
    var list = document.getElementById("hotspot-list");
    if (list && data.hotspots) {
      list.textContent = "";
      data.hotspots.items.forEach(function (item) {
        var li = document.createElement("li");
        var link = document.createElement("a");
        link.href = item.url;
        link.textContent = item.text;
        li.appendChild(link);
        list.appendChild(li);
      });
      var none = document.getElementById("hotspots-none");
      if (none) { none.hidden = data.hotspots.items.length > 0; }
    }
  }

  function updated() {
    var time = new Date().toLocaleTimeString(lang, {hour12: false});
    say((root.dataset.updated || "{time}").replace("{time}", time), false);
  }

  function receive(data) {
    figures = data;
    draw(data);
    updated();
  }

  function listen() {
    var source = new EventSource(root.dataset.stream);
    source.addEventListener("figures", function (event) {
      try { receive(JSON.parse(event.data)); } catch (e) { say(root.dataset.reconnecting, true); }
    });
    source.onopen = function () { say(root.dataset.live, false); };
    // EventSource reconnects by itself (the stream ends every few minutes, the server may restart).
    source.onerror = function () { say(root.dataset.reconnecting, true); };
  }

  function poll() {
    var etag = null;
    var every = parseInt(root.dataset.refresh, 10) || 3000;
    function once() {
      var headers = etag ? {"If-None-Match": etag} : {};
      fetch(root.dataset.figuresUrl, {credentials: "same-origin", headers: headers}).then(function (r) {
        if (r.status === 304) { updated(); return null; }
        if (!r.ok) { throw new Error(String(r.status)); }
        etag = r.headers.get("ETag");
        return r.json();
      }).then(function (data) { if (data) { receive(data); } })
        .catch(function () { say(root.dataset.reconnecting, true); })
        .then(function () { window.setTimeout(once, every); });
    }
    once();
  }

  var full = document.getElementById("screen-fullscreen");
  if (full) {
    full.addEventListener("click", function () {
      if (document.fullscreenElement) { document.exitFullscreen(); }
      else if (document.documentElement.requestFullscreen) { document.documentElement.requestFullscreen(); }
    });
  }
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) {
      if (roomy(charts[id].getDom())) { charts[id].resize(); }
    });
    var map = charts["chart-districts"];
    if (districtsPending && map && figures && roomy(map.getDom())) {
      districtsPending = false;
      districts(map, figures);
    }
  });

  tick();
  window.setInterval(tick, 1000);
  if (!window.echarts) {
    document.getElementById("screen-error").hidden = false;
  }
  draw(figures);
  if (window.EventSource) { listen(); } else if (window.fetch) { poll(); }
}());
