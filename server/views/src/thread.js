// The thread view: get_thread's thread with its comments as a tree, authors and pinned state, and
// a reply box that posts through the host (create_comment, as the school's owner: whoami).
import { day, h, startView } from "./common.js";

function comment(node, replyTo) {
  return h(
    "li",
    { class: "card", "aria-label": `Comment by ${node.author.name}` },
    h("p", {}, h("strong", {}, node.author.name), " ", h("span", { class: "muted" }, day(node.createdAt))),
    h("p", { style: "white-space: pre-wrap" }, node.content),
    replyTo
      ? h("button", { type: "button", class: "secondary", onclick: () => replyTo(node), "aria-label": `Reply to ${node.author.name}` }, "Reply")
      : null,
    node.replies.length ? h("ul", { class: "plain", style: "margin-left: 12px" }, node.replies.map((reply) => comment(reply, replyTo))) : null,
  );
}

function render(thread, view, whoami) {
  // Replies are posted with create_comment, as the school's owner: offered only where the key may.
  const mayReply = whoami.tools.includes("create_comment");
  let parent = null;
  const box = h("textarea", { id: "reply", name: "reply", required: true });
  const target = h("p", { class: "muted", id: "reply-target" }, "Replying to the thread.");
  const status = h("p", { class: "muted", role: "status" });
  const replyTo = (node) => {
    parent = node;
    target.textContent = `Replying to ${node.author.name}.`;
    box.focus();
  };
  const send = async (event) => {
    event.preventDefault();
    const content = box.value.trim();
    if (!content) {
      status.textContent = "Write a reply first.";
      return;
    }
    const button = event.currentTarget.querySelector("button[type=submit]");
    button.disabled = true;
    status.textContent = "Posting…";
    try {
      await view.call("create_comment", {
        communityId: thread.communityId,
        threadId: thread.id,
        content,
        userId: whoami.producer.ownerUserId,
        ...(parent ? { parentId: parent.id } : {}),
      });
      const fresh = await view.call("get_thread", { communityId: thread.communityId, threadId: thread.id });
      render(fresh.thread, view, whoami);
      view.root.querySelector("#reply-status").textContent = "Reply posted.";
    } catch (error) {
      status.textContent = `Not posted: ${error.message}`;
      button.disabled = false;
    }
  };
  status.id = "reply-status";
  view.show(
    h(
      "main",
      {},
      h("h1", {}, thread.title, " ", thread.pinned ? h("span", { class: "badge on" }, "pinned") : null),
      h("p", { class: "muted" }, `${thread.author.name} · ${day(thread.createdAt)} · ${thread.commentCount} comments`),
      h("p", { style: "white-space: pre-wrap" }, thread.content),
      h("h2", { id: "comments" }, "Comments"),
      thread.comments.length
        ? h("ul", { class: "plain", "aria-labelledby": "comments" }, thread.comments.map((node) => comment(node, mayReply ? replyTo : null)))
        : h("p", { class: "muted" }, "No comments yet."),
      !mayReply
        ? h("p", { class: "muted" }, "Replying needs the communities:write permission.")
        : h(
        "form",
        { onsubmit: send },
        h("label", { for: "reply" }, "Your reply"),
        target,
        box,
        h("div", { class: "row", style: "margin-top: 8px" }, h("button", { type: "submit" }, "Post reply"), status),
      ),
    ),
  );
}

startView("thread", async (data, view) => render(data.thread, view, await view.call("whoami", {})));
