-- What drove the urgency level route decided (inquiries.routed urgency_drivers: the model, the
-- signals, intent and sentiment, each with its weight), so the console can say why. Decisions
-- archived before have none.
-- Unqualified names: migrate() sets the search_path to the application schema.
ALTER TABLE routing_decisions ADD COLUMN urgency_drivers jsonb NOT NULL DEFAULT '[]';
