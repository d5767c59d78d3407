import { describe, expect, it } from "vitest";
import { stripQuotesAndSignatures, stripReplyPrefixes } from "../../text/quotes.js";

const lines = (...parts: string[]): string => parts.join("\n");

describe("quoted replies", () => {
  it("drops a Gmail reply's attribution and '> ' quotes", () => {
    const email = lines(
      "Still nothing, the tracking page shows no movement.",
      "",
      "On Mon, Mar 3, 2025 at 10:04 AM Shop Support <support@shop.example> wrote:",
      "> Hi Dana,",
      "> your parcel is on its way.",
      ">> On Sun, Mar 2, 2025 Dana wrote:",
      ">> Where is my order?",
    );
    expect(stripQuotesAndSignatures(email)).toBe("Still nothing, the tracking page shows no movement.");
  });

  it("recognizes an attribution the client wrapped over two lines", () => {
    const email = lines(
      "Please cancel it then.",
      "",
      "On Tue, 4 Mar 2025 at 09:12, Customer Care Team of Example Shop <",
      "care@shop.example> wrote:",
      "> We are sorry for the delay.",
    );
    expect(stripQuotesAndSignatures(email)).toBe("Please cancel it then.");
  });

  it("keeps a bottom-posted answer below the quote", () => {
    const email = lines(
      "On 03/03/2025 10:04, Support wrote:",
      "> Could you send us the order number?",
      "",
      "Sure, it is 48213.",
    );
    expect(stripQuotesAndSignatures(email)).toBe("Sure, it is 48213.");
  });

  it("keeps answers interleaved between quoted questions", () => {
    const email = lines("> Which model do you have?", "The K-200.", "> When did you buy it?", "In January.");
    expect(stripQuotesAndSignatures(email)).toBe("The K-200.\nIn January.");
  });

  it("cuts Outlook's header block and everything below, in English, German, French and Spanish", () => {
    const headers = [
      [
        "From: Support <support@shop.example>",
        "Sent: Monday, March 3, 2025 10:04 AM",
        "To: Dana <dana@example.com>",
        "Subject: RE: Order",
      ],
      [
        "Von: Support <support@shop.example>",
        "Gesendet: Montag, 3. März 2025 10:04",
        "An: Max <max@example.de>",
        "Betreff: AW: Bestellung",
      ],
      [
        "De : Support <support@shop.example>",
        "Envoyé : lundi 3 mars 2025 10:04",
        "À : Jean <jean@example.fr>",
        "Objet : RE: Commande",
      ],
      [
        "De: Soporte <soporte@shop.example>",
        "Enviado: lunes, 3 de marzo de 2025 10:04",
        "Para: Ana <ana@example.es>",
        "Asunto: RE: Pedido",
      ],
    ];
    for (const header of headers) {
      const email = lines(
        "My reply is up here.",
        "",
        "________________________________",
        ...header,
        "",
        "Earlier message body.",
      );
      expect(stripQuotesAndSignatures(email), header[0]).toBe("My reply is up here.");
    }
  });

  it("cuts Outlook's header block flattened to one line by an HTML conversion", () => {
    const email = lines(
      "Got it, thanks.",
      "From: Support Sent: Monday, March 3, 2025 10:04 AM To: Dana Subject: Order",
      "Old text",
    );
    expect(stripQuotesAndSignatures(email)).toBe("Got it, thanks.");
  });

  it("cuts at original-message separators in several languages", () => {
    for (const separator of [
      "-----Original Message-----",
      "-----Ursprüngliche Nachricht-----",
      "-----Message d'origine-----",
      "-----Mensaje original-----",
    ]) {
      expect(
        stripQuotesAndSignatures(lines("Please refund me.", separator, "From: someone", "older text")),
        separator,
      ).toBe("Please refund me.");
    }
  });

  it("cuts German, French, Spanish and Portuguese attributions", () => {
    const attributions = [
      "Am 03.03.2025 um 10:04 schrieb Support <support@shop.example>:",
      "Le lun. 3 mars 2025 à 10:04, Support <support@shop.example> a écrit :",
      "El lun, 3 mar 2025 a las 10:04, Soporte (<soporte@shop.example>) escribió:",
      "Em seg., 3 de mar. de 2025 às 10:04, Suporte <suporte@shop.example> escreveu:",
    ];
    for (const attribution of attributions) {
      expect(
        stripQuotesAndSignatures(lines("Meine Antwort.", "", attribution, "Unprefixed older message.")),
        attribution,
      ).toBe("Meine Antwort.");
    }
  });

  it("keeps a customer's own sentence shaped like an attribution", () => {
    const text = lines("On Monday I wrote:", "the kettle leaks. Nobody answered.");
    expect(stripQuotesAndSignatures(text)).toBe(text);
  });

  it("returns the uncut text when everything would be removed (a bare forward)", () => {
    const forward = lines(
      "---------- Forwarded message ---------",
      "From: Dana <dana@example.com>",
      "Date: Mon, Mar 3, 2025",
      "",
      "My kettle leaks.",
    );
    expect(stripQuotesAndSignatures(forward)).toBe(forward);
    expect(stripQuotesAndSignatures("> only a quote")).toBe("> only a quote");
  });
});

describe("signatures", () => {
  it("cuts at the '-- ' delimiter", () => {
    expect(
      stripQuotesAndSignatures(lines("The app crashes on start.", "-- ", "Dana Smith", "ACME Corp", "+1 415 555 2671")),
    ).toBe("The app crashes on start.");
  });

  it("drops mobile client signatures", () => {
    for (const signature of [
      "Sent from my iPhone",
      "Sent from Outlook for Android",
      "Von meinem iPhone gesendet",
      "Envoyé de mon iPhone",
      "Enviado desde mi Samsung Galaxy",
      "Enviado do meu iPad",
    ]) {
      expect(stripQuotesAndSignatures(lines("Where is my refund?", "", signature)), signature).toBe(
        "Where is my refund?",
      );
    }
  });

  it("drops a closing with the signature block under it", () => {
    const email = lines(
      "Hello,",
      "",
      "the invoice is wrong.",
      "",
      "Best regards,",
      "Dana Smith",
      "Head of Purchasing",
      "ACME Corp | acme.example",
      "Phone: +1 415 555 2671",
    );
    expect(stripQuotesAndSignatures(email)).toBe("Hello,\n\nthe invoice is wrong.");
    const german = lines(
      "Guten Tag,",
      "",
      "die Lieferung fehlt.",
      "",
      "Mit freundlichen Grüßen",
      "Max Mustermann",
      "Musterfirma GmbH",
      "Tel. 030 1234567",
    );
    expect(stripQuotesAndSignatures(german)).toBe("Guten Tag,\n\ndie Lieferung fehlt.");
    expect(stripQuotesAndSignatures(lines("Merci de me rembourser.", "", "Cordialement,", "Jean Dupont"))).toBe(
      "Merci de me rembourser.",
    );
    expect(stripQuotesAndSignatures(lines("Necesito ayuda.", "", "Un saludo,", "Ana"))).toBe("Necesito ayuda.");
  });

  it("drops 'Thanks,' with a name under it, but keeps a closing thank-you and text after 'Thanks!'", () => {
    expect(stripQuotesAndSignatures(lines("Can you resend the invoice?", "", "Thanks,", "Dana"))).toBe(
      "Can you resend the invoice?",
    );
    expect(stripQuotesAndSignatures(lines("The replacement works.", "Thanks!"))).toBe(
      "The replacement works.\nThanks!",
    );
    const more = lines("The replacement works.", "Thanks!", "I also want to ask about my invoice.");
    expect(stripQuotesAndSignatures(more)).toBe(more);
  });

  it("keeps a long message that merely contains a closing word in the middle", () => {
    const text = lines(
      "Regards",
      ...Array.from(
        { length: 12 },
        (_, i) => `Step ${i + 1}: the device restarts again after the update and loses its settings.`,
      ),
    );
    expect(stripQuotesAndSignatures(text)).toBe(text);
  });
});

describe("disclaimers", () => {
  it("cuts a legal disclaimer at the bottom", () => {
    const email = lines(
      "Please update my billing address.",
      "",
      "CONFIDENTIALITY NOTICE: This email and any attachments are confidential and intended solely for the addressee.",
      "If you are not the intended recipient, please delete it.",
    );
    expect(stripQuotesAndSignatures(email)).toBe("Please update my billing address.");
  });

  it("drops an external-sender banner at the top and keeps the message", () => {
    const email = lines(
      "CAUTION: This email originated from outside of the organization. Do not click links unless you recognize the sender.",
      "",
      "Our dashboard has been down since 9am.",
    );
    expect(stripQuotesAndSignatures(email)).toBe("Our dashboard has been down since 9am.");
  });

  it("cuts German, French and Spanish disclaimers", () => {
    const disclaimers = [
      "Diese E-Mail enthält vertrauliche Informationen. Wenn Sie nicht der richtige Adressat sind, informieren Sie bitte den Absender.",
      "Ce message et toutes les pièces jointes sont confidentiels et établis à l'intention exclusive de ses destinataires.",
      "Este mensaje y sus anexos son confidenciales. Si usted no es el destinatario, bórrelo.",
    ];
    for (const disclaimer of disclaimers) {
      expect(stripQuotesAndSignatures(lines("Bitte stornieren.", "", disclaimer)), disclaimer).toBe(
        "Bitte stornieren.",
      );
    }
  });

  it("keeps a customer's own sentence about confidential data", () => {
    const text =
      "The report I sent you contains confidential data, please delete it.\n\nAlso, when will my order ship?";
    expect(stripQuotesAndSignatures(text)).toBe(text);
  });
});

describe("subject reply prefixes", () => {
  it("strips repeated and numbered prefixes in several languages", () => {
    expect(stripReplyPrefixes("Re: RE: Fwd: Order 48213")).toBe("Order 48213");
    expect(stripReplyPrefixes("AW: WG: Bestellung")).toBe("Bestellung");
    expect(stripReplyPrefixes("Re[2]: TR: Commande")).toBe("Commande");
    expect(stripReplyPrefixes("Refund request")).toBe("Refund request");
  });
});
