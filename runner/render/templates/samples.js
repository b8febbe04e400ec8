// The report's sample viewer: plain JS, no library, no network. The data is embedded once as JSON (the
// element with id qf-samples); qfSamplesView is a pure function (tests run it in QuickJS) and
// qfSamplesMount draws one page of it with textContent, never as markup.
"use strict";

// One page of a table: rows are samples, each with every model's answer side by side.
// view: {failuresOnly, sortMetric ("" keeps the dataset's order), sortModel, descending, page (from 0), pageSize,
//        benchmark (absent or "*": every sample; "": the dataset's; a name: that benchmark's items)}
function qfSamplesView(table, view) {
  var rows = table.rows;
  if (typeof view.benchmark === "string" && view.benchmark !== "*") {
    rows = rows.filter(function (row) { return (row.benchmark || "") === view.benchmark; });
  }
  if (view.failuresOnly) {
    rows = rows.filter(function (row) {
      return table.models.some(function (model) {
        var answer = row.answers[model];
        return answer !== undefined && answer.passed === false;
      });
    });
  }
  if (view.sortMetric) {
    var model = view.sortModel || table.models[0];
    var value = function (row) {
      var answer = row.answers[model];
      var found = answer === undefined ? undefined : answer.metrics[view.sortMetric];
      return typeof found === "number" ? found : null;
    };
    var sign = view.descending ? -1 : 1;
    // equal values keep the table's order (the dataset's samples, then each benchmark's items)
    var placed = rows.map(function (row, position) { return {row: row, position: position, value: value(row)}; });
    placed.sort(function (a, b) {
      var x = a.value, y = b.value;
      if (x === null || y === null) {  // samples without the metric go last either way
        return x === y ? a.position - b.position : (x === null ? 1 : -1);
      }
      return x === y ? a.position - b.position : (x < y ? -sign : sign);
    });
    rows = placed.map(function (entry) { return entry.row; });
  }
  var size = Math.max(1, view.pageSize | 0);
  var pages = Math.max(1, Math.ceil(rows.length / size));
  var page = Math.min(Math.max(0, view.page | 0), pages - 1);
  return {rows: rows.slice(page * size, page * size + size), total: rows.length, page: page, pages: pages};
}

function qfSamplesMount(root, table) {
  var view = {failuresOnly: false, sortMetric: "", sortModel: table.models[0], descending: false,
              page: 0, pageSize: 50, benchmark: "*"};
  var body = root.querySelector("tbody");
  var status = root.querySelector(".qf-page");
  var cell = function (tr, text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    tr.appendChild(td);
    return td;
  };
  var draw = function () {
    var shown = qfSamplesView(table, view);
    view.page = shown.page;
    body.textContent = "";
    shown.rows.forEach(function (row) {
      var tr = document.createElement("tr");
      cell(tr, row.benchmark ? row.benchmark + " #" + row.index : String(row.index), "num");
      cell(tr, row.input, "text");
      cell(tr, row.expected, "text");
      table.models.forEach(function (model) {
        var answer = row.answers[model];
        if (answer === undefined) { cell(tr, ""); return; }
        var td = cell(tr, answer.output, answer.passed === false ? "text fail" : "text");
        var scores = Object.keys(answer.metrics).map(function (name) {
          return name + " " + Number(answer.metrics[name]).toPrecision(3);
        }).join(", ");
        var small = document.createElement("div");
        small.className = "scores";
        small.textContent = scores + (answer.reason ? " · judge: " + answer.reason : "");
        td.appendChild(small);
      });
      body.appendChild(tr);
    });
    status.textContent = shown.total + " samples · page " + (shown.page + 1) + " of " + shown.pages;
  };
  var on = function (selector, event, act) {
    root.querySelector(selector).addEventListener(event, function (e) { act(e.target); view.page = 0; draw(); });
  };
  on(".qf-failures", "change", function (box) { view.failuresOnly = box.checked; });
  on(".qf-sort", "change", function (select) { view.sortMetric = select.value; });
  on(".qf-model", "change", function (select) { view.sortModel = select.value; });
  on(".qf-desc", "change", function (box) { view.descending = box.checked; });
  if (root.querySelector(".qf-benchmark")) {  // only a table with benchmark items has the choice
    on(".qf-benchmark", "change", function (select) { view.benchmark = select.value; });
  }
  root.querySelector(".qf-prev").addEventListener("click", function () { view.page -= 1; draw(); });
  root.querySelector(".qf-next").addEventListener("click", function () { view.page += 1; draw(); });
  draw();
}

if (typeof document !== "undefined") {
  document.addEventListener("DOMContentLoaded", function () {
    var data = JSON.parse(document.getElementById("qf-samples").textContent);
    data.forEach(function (table, position) {
      qfSamplesMount(document.getElementById("qf-samples-" + position), table);
    });
  });
}
