// Learners needing attention: the stalled enrollments of find_students_needing_attention, each
// with a button asking the host to draft a message, and one opening the student (get_student).
import { day, h, startView } from "./common.js";

function draftRequest(row) {
  const next = row.nextLesson ? ` Their next lesson is “${row.nextLesson.title}”.` : "";
  return (
    `Draft a short, warm message to ${row.studentName} (student ${row.studentId}) to help them back into ` +
    `“${row.courseTitle}”: ${row.progressPercent}% done, silent for ${row.daysSilent} days.${next}`
  );
}

function studentCard(student) {
  return h(
    "div",
    { class: "card", role: "region", "aria-label": `Student ${student.name}` },
    h("p", {}, h("strong", {}, student.name), " · ", student.email),
    student.bio ? h("p", { class: "muted" }, student.bio) : null,
    h("p", { class: "muted" }, `Streak ${student.streak.current} days (longest ${student.streak.longest}) · joined ${day(student.createdAt)}`),
  );
}

function row(entry, view, mayOpenStudents) {
  const details = h("div", {});
  const status = h("p", { class: "muted", role: "status" });
  const draft = async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const answer = await view.app.sendMessage({ role: "user", content: [{ type: "text", text: draftRequest(entry) }] });
      status.textContent = answer?.isError ? "The host declined the request." : "Asked the assistant to draft a message.";
    } catch (error) {
      status.textContent = `Could not ask the host: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  };
  const open = async () => {
    try {
      details.replaceChildren(studentCard((await view.call("get_student", { studentId: entry.studentId })).student));
    } catch (error) {
      details.replaceChildren(h("p", { class: "error" }, error.message));
    }
  };
  return h(
    "li",
    { class: "card" },
    h(
      "div",
      { class: "row" },
      h("div", { class: "grow" }, h("strong", {}, entry.studentName), h("p", { class: "muted" }, entry.courseTitle)),
      h("span", { class: "badge" }, `${entry.daysSilent} days silent`),
    ),
    h("div", { class: "bar", role: "img", "aria-label": `${entry.progressPercent}% of the course done` }, h("span", { style: `width: ${entry.progressPercent}%` })),
    h("p", { class: "muted" }, `${entry.progressPercent}% · ${entry.completedLessons}/${entry.totalLessons} lessons`, entry.nextLesson ? ` · next: ${entry.nextLesson.title}` : ""),
    h(
      "div",
      { class: "row" },
      h("button", { type: "button", onclick: draft, "aria-label": `Draft a message to ${entry.studentName}` }, "Draft message"),
      mayOpenStudents
        ? h("button", { type: "button", class: "secondary", onclick: open, "aria-label": `Open ${entry.studentName}` }, "Open student")
        : null,
    ),
    status,
    details,
  );
}

startView("attention", async (page, view) => {
  // A student opens with get_student: offered only where the key may call it.
  const { tools } = await view.call("whoami", {});
  const mayOpenStudents = tools.includes("get_student");
  view.show(
    h(
      "main",
      {},
      h("h1", {}, "Learners needing attention"),
      h("p", { class: "muted" }, `${page.pagination.total} enrollments without progress since ${day(page.silentSince)}`),
      page.data.length ? h("ul", { class: "plain" }, page.data.map((entry) => row(entry, view, mayOpenStudents))) : h("p", {}, "Nobody: every learner is moving."),
    ),
  );
});
