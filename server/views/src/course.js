// The course view: the curriculum as an outline and, where the key may read enrollments, the
// lesson funnel (opened by get_course and by get_course_insights; each fetches the other part).
import { day, h, minutes, percent, startView, svg } from "./common.js";

function thumbnail(lesson) {
  // A remote thumbnail would be an external request, which the view's CSP does not allow:
  // a drawn tile names the video's provider instead.
  const provider = lesson.videoMeta?.type ?? (lesson.videoUrl ? "video" : "text");
  return svg(
    "svg",
    { class: "tile", width: 64, height: 36, viewBox: "0 0 64 36", role: "img", "aria-label": `${provider} lesson` },
    svg("rect", { width: 64, height: 36, rx: 4, fill: "var(--line)" }),
    lesson.videoUrl ? svg("path", { d: "M28 6 L38 13 L28 20 Z", fill: "var(--accent)" }) : null,
    svg("text", { x: 4, y: 32 }, provider),
  );
}

function outline(course) {
  return h(
    "section",
    { "aria-labelledby": "outline" },
    h("h2", { id: "outline" }, "Curriculum"),
    course.sections.map((section, index) =>
      h(
        "div",
        { class: "card" },
        h("h3", {}, `${index + 1}. ${section.title}`),
        h(
          "ul",
          { class: "plain" },
          section.lessons.map((lesson) =>
            h(
              "li",
              { class: "row", style: "margin: 6px 0" },
              thumbnail(lesson),
              h("span", { class: "grow" }, lesson.title),
              lesson.isPreview ? h("span", { class: "badge" }, "preview") : null,
              h("span", { class: "muted" }, minutes(lesson.duration)),
            ),
          ),
        ),
      ),
    ),
  );
}

function funnel(insights) {
  return h(
    "section",
    { "aria-labelledby": "funnel" },
    h("h2", { id: "funnel" }, "Lesson funnel"),
    h(
      "p",
      {},
      `${insights.enrollments} enrolled · ${insights.completed} completed (${percent(insights.completionRate)}) · `,
      `${insights.activeLast7Days.learners} active in 7 days`,
    ),
    insights.largestDrop
      ? h(
          "p",
          { class: "muted" },
          `Largest drop: ${insights.largestDrop.lost} learners (${insights.largestDrop.lostPercent}%) before “${insights.largestDrop.lessonTitle}”.`,
        )
      : null,
    h(
      "ol",
      { class: "plain" },
      insights.funnel.map((step) =>
        h(
          "li",
          { style: "margin: 6px 0" },
          h("div", { class: "row" }, h("span", { class: "grow" }, `${step.position}. ${step.lessonTitle}`), h("span", { class: "muted" }, `${step.completed} completed · ${percent(step.completionRate)}`)),
          h("div", { class: "bar", role: "img", "aria-label": `${percent(step.completionRate)} completed` }, h("span", { style: `width: ${Math.round(step.completionRate * 100)}%` })),
        ),
      ),
    ),
  );
}

startView("course", async (data, view) => {
  const courseId = data.course?.id ?? data.insights?.courseId;
  const course = data.course ?? (await view.call("get_course", { courseId })).course;
  let insights = data.insights;
  if (!insights) {
    // Only where the key may call it: whoami lists the tools this key can call.
    const { tools } = await view.call("whoami", {});
    if (tools.includes("get_course_insights")) insights = (await view.call("get_course_insights", { courseId })).insights;
  }
  view.show(
    h(
      "main",
      {},
      h(
        "header",
        {},
        h("h1", {}, course.title, " ", h("span", { class: course.published ? "badge on" : "badge" }, course.published ? "published" : "draft")),
        h("p", { class: "muted" }, `${course.sectionCount} sections · ${course.lessonCount} lessons · ${minutes(course.totalDuration)}${course.publishedAt ? ` · published ${day(course.publishedAt)}` : ""}`),
        course.shortDescription ? h("p", {}, course.shortDescription) : null,
      ),
      outline(course),
      insights ? funnel(insights) : h("p", { class: "muted" }, "The lesson funnel needs the enrollments:read permission."),
    ),
  );
});
