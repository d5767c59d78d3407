-- The ticket webhooks find a ticket's first inquiry by its thread (`<desk>:<ticket id>`) to label
-- it when an agent changes the ticket. A hash index: a thread id can be longer than a B-tree entry
-- may be (an email's references), and the lookup is by equality only.
-- Unqualified names: migrate() sets the search_path to the application schema.
CREATE INDEX inquiries_thread ON inquiries USING hash (thread_id);
