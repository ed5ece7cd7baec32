// The school report: get_school_report's figures against the period before, each with its change
// and a two-bar chart (inline SVG), grouped as the report groups them.
import { day, h, startView, svg } from "./common.js";

const LABELS = {
  newStudents: "New students",
  enrollments: "Enrollments",
  lessonsCompleted: "Lessons completed",
  coursesCompleted: "Courses completed",
  certificates: "Certificates",
  activeLearners: "Active learners",
  newThreads: "New threads",
  newComments: "New comments",
};
const GROUPS = { students: "Students", learning: "Learning", community: "Community" };

function change(figure) {
  if (figure.changePercent == null) return h("span", { class: "muted" }, "new");
  const sign = figure.changePercent > 0 ? "+" : "";
  const direction = figure.changePercent > 0 ? "up" : figure.changePercent < 0 ? "down" : "";
  const arrow = direction === "up" ? "▲ " : direction === "down" ? "▼ " : "";
  return h("span", { class: direction }, `${arrow}${sign}${figure.changePercent}%`);
}

function chart(label, figure) {
  const top = Math.max(figure.value, figure.previous, 1);
  const bar = (value, y, fill) => svg("rect", { x: 70, y, height: 12, rx: 2, width: Math.max(1, Math.round((value / top) * 150)), fill });
  return svg(
    "svg",
    { viewBox: "0 0 260 40", width: "100%", height: 40, role: "img", "aria-label": `${label}: ${figure.value} now, ${figure.previous} before` },
    svg("text", { x: 0, y: 12 }, "this period"),
    bar(figure.value, 2, "var(--accent)"),
    svg("text", { x: 226, y: 12 }, figure.value),
    svg("text", { x: 0, y: 32 }, "before"),
    bar(figure.previous, 22, "var(--muted)"),
    svg("text", { x: 226, y: 32 }, figure.previous),
  );
}

function figureCard(name, figure) {
  const label = LABELS[name] ?? name;
  return h(
    "li",
    { class: "card" },
    h("p", { class: "muted" }, label),
    h("div", { class: "row" }, h("span", { class: "figure" }, figure.value), change(figure)),
    chart(label, figure),
  );
}

startView("report", ({ report }, view) => {
  const until = new Date(new Date(report.period.until).getTime() - 1).toISOString();
  view.show(
    h(
      "main",
      {},
      h("h1", {}, "School report"),
      h("p", { class: "muted" }, `${day(report.period.since)} – ${day(until)}, against the ${Math.round((new Date(report.period.until) - new Date(report.period.since)) / 86400000)} days before`),
      Object.entries(GROUPS).map(([key, title]) =>
        report[key]
          ? h(
              "section",
              { "aria-labelledby": `group-${key}` },
              h("h2", { id: `group-${key}` }, title),
              h("ul", { class: "plain report-grid" }, Object.entries(report[key]).map(([name, figure]) => figureCard(name, figure))),
            )
          : null,
      ),
      report.omitted.length ? h("p", { class: "muted" }, `Not shown (this key may not read them): ${report.omitted.join(", ")}.`) : null,
    ),
  );
});
