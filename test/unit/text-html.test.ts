import { describe, expect, it } from "vitest";
import { htmlToPlainText, looksLikeHtml } from "../../text/html.js";

const NEWSLETTER = `<!DOCTYPE html>
<html><head><title>Spring sale</title><style>.cta{color:#f00}</style>
<script>window.dataLayer=[];track("open");</script></head>
<body>
  <h1>Your order &amp; what&#39;s next</h1>
  <p>Hi there,<br>your parcel left our warehouse&nbsp;today &mdash; see the <a href="https://track.example.com/?u=8812&amp;sig=abc">tracking page</a>.</p>
  <table><tr><td>Kettle</td><td>49,99&nbsp;&euro;</td></tr><tr><td>Shipping</td><td>4,90&nbsp;&euro;</td></tr></table>
  <img src="https://pixel.example.com/open.gif" alt="pixel">
  <button onclick="steal()">Unsubscribe</button>
  <script type="text/javascript">document.cookie</script>
  <noscript>Enable JavaScript</noscript><iframe src="https://ads.example.com">ad</iframe>
  <ul><li>Fast delivery</li><li>Free returns</li></ul>
</body></html>`;

describe("HTML to text", () => {
  const text = htmlToPlainText(NEWSLETTER);

  it("keeps the visible text, decodes entities and keeps link text without the target", () => {
    expect(text).toContain("Your order & what's next");
    expect(text).toContain("your parcel left our warehouse\u00A0today — see the tracking page.");
    expect(text).not.toMatch(/https?:|track\.example|pixel/);
  });

  it("drops scripts, styles, head, iframes and noscript content, and event handler code", () => {
    for (const hidden of [
      "dataLayer",
      "document.cookie",
      "color:#f00",
      "Spring sale",
      "Enable JavaScript",
      "ad\n",
      "steal()",
    ]) {
      expect(text).not.toContain(hidden);
    }
    expect(text).toContain("Unsubscribe");
  });

  it("writes one line per table row and list item", () => {
    expect(text).toMatch(/^Kettle 49,99\s€\s*$/m);
    expect(text).toMatch(/^Shipping 4,90\s€\s*$/m);
    expect(text).toMatch(/^- Fast delivery$/m);
  });

  it("renders quoted blocks as '> ' lines for quote removal", () => {
    const reply = htmlToPlainText(
      '<div>Yes please.</div><blockquote class="gmail_quote">Shall we refund?<br>Team</blockquote>',
    );
    expect(reply).toMatch(/^Yes please\.\n+> Shall we refund\?\n> Team$/);
  });

  it("keeps the writer's line breaks in plain text that carries some markup", () => {
    const text = "Still broken.<br>\n\nOn Mon, Mar 3, 2025 at 10:04 AM Support wrote:\n> Try a restart.";
    expect(htmlToPlainText(text, { markedUpText: true })).toMatch(
      /^Still broken\.\n+On Mon, .* wrote:\n> Try a restart\.$/,
    );
    expect(htmlToPlainText(text)).not.toContain("\n> Try");
  });

  it("recognizes HTML bodies sent as plain text, but not text that mentions angle brackets", () => {
    expect(looksLikeHtml("<p>Hello</p>")).toBe(true);
    expect(looksLikeHtml("hi<br/>there")).toBe(true);
    expect(looksLikeHtml('<script>alert("x")</script>')).toBe(true);
    expect(looksLikeHtml("if a < b and c > d, the total is <= 5")).toBe(false);
    expect(looksLikeHtml("Dear <name>, your number <tel_num> is on file")).toBe(false);
  });
});
