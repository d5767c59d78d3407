/** Queries the retrieval test and `npm run bench:embedding` measure the knowledge base on. */

/** Three realistic inquiries per intent, none of them an article's example question. */
export const REALISTIC: Readonly<Record<string, readonly string[]>> = {
  cancel_order: [
    "I ordered the wrong kettle an hour ago, please cancel the order before it ships",
    "Can I still cancel order 55120? I found it cheaper elsewhere",
    "cancel my purchase from this morning please",
  ],
  change_order: [
    "I ordered the blue cushion covers but want the green ones instead, can I change my order?",
    "Please add a second pillow to the order I placed today",
    "I need to change the quantity on my order from 4 plates to 6",
  ],
  place_order: [
    "How do I buy the oak side table from your website?",
    "I'd like to order two lamps, what do I need to do?",
    "Can I order without creating an account?",
  ],
  track_order: [
    "My parcel still hasn't shown up, where is order 48213?",
    "Tracking hasn't updated since Monday, can you check on my package?",
    "what's the status of my order",
  ],
  change_shipping_address: [
    "I moved last week and my order is going to my old address, can you change it?",
    "Typo in the street name of my delivery address, please fix it before it ships",
    "Can the parcel be redirected to my office instead of home?",
  ],
  set_up_shipping_address: [
    "How do I add my work address to my account for future deliveries?",
    "I want to save a second delivery address",
    "Where can I set a default shipping address?",
  ],
  check_cancellation_fee: [
    "Will I be charged anything if I cancel my Plus membership?",
    "Is there a penalty for cancelling a made-to-order sofa?",
    "What does it cost to cancel?",
  ],
  check_invoice: [
    "The VAT on my last invoice seems too high, can you check it?",
    "I want to look at the invoices for my orders this year",
    "Why are there two invoices for one order?",
  ],
  get_invoice: [
    "I need a PDF invoice for my accountant",
    "Please send me the invoice for order 77120 with my company VAT number",
    "Where do I download a receipt for my purchase?",
  ],
  check_payment_methods: [
    "Do you accept American Express?",
    "Can I pay with Klarna in instalments?",
    "Which ways to pay do you have, is Apple Pay possible?",
  ],
  payment_issue: [
    "I was charged twice for the same order, please help",
    "My card keeps being declined at checkout even though it works elsewhere",
    "The payment failed but the money left my bank account",
  ],
  check_refund_policy: [
    "Can I return something I bought 3 weeks ago?",
    "Are opened items eligible for a refund?",
    "What are the conditions for returning an item?",
  ],
  get_refund: [
    "The mug arrived broken and I want my money back",
    "I'd like to return the jacket and get refunded",
    "please refund me for the faulty toaster",
  ],
  track_refund: [
    "I sent my return two weeks ago and still no refund, where is it?",
    "When will I see the refund for my returned blender?",
    "Has my refund been processed yet?",
  ],
  complaint: [
    "I am very disappointed with how you handled my last order and want to file a complaint",
    "This is unacceptable service, I want to complain to a manager",
    "How can I lodge a formal complaint?",
  ],
  review: [
    "I'd like to leave a review for the vase I bought",
    "Where can I give feedback about your delivery service?",
    "How do I rate a product?",
  ],
  contact_customer_service: [
    "What are your opening hours for customer support?",
    "How can I reach your support team by phone?",
    "Is there a live chat I can use for help?",
  ],
  contact_human_agent: [
    "Stop sending me bot answers, I want to speak to a real person",
    "Can you transfer me to a human agent please",
    "Let me talk to someone from your team",
  ],
  create_account: [
    "How do I sign up for an account on your site?",
    "I want to register so I can see my order history",
    "What do I need to open a customer account?",
  ],
  delete_account: [
    "Please delete my account and all my data",
    "How do I close my customer account permanently?",
    "I want to remove my profile from your website",
  ],
  edit_account: [
    "How do I change the email address on my account?",
    "I need to update my phone number in my profile",
    "Where can I edit my personal details?",
  ],
  recover_password: [
    "I forgot my password and can't log in",
    "The password reset link doesn't work, I'm locked out",
    "How can I reset my password?",
  ],
  registration_problems: [
    "When I try to sign up it says my email is already in use",
    "I never received the confirmation email after registering",
    "The registration form gives me an error and won't submit",
  ],
  switch_account: [
    "How do I upgrade my standard account to Plus?",
    "I want to switch to a business account",
    "How do I change between my two accounts in the app?",
  ],
  delivery_options: [
    "Do you offer next-day delivery?",
    "Can I pick up my order from a parcel locker?",
    "Do you ship to Norway and how much does it cost?",
  ],
  delivery_period: [
    "How long does standard delivery take?",
    "If I order today, when will it arrive?",
    "How many days does shipping take outside the EU?",
  ],
  newsletter_subscription: [
    "Please unsubscribe me from your marketing emails",
    "How do I sign up for your newsletter?",
    "I keep getting promotional emails, how do I stop them?",
  ],
};
