-- Versions built from pre-trained weights alone (the knowledge base's sentence embedder) have no
-- training data, held-out set or seed; lineage records the weights they were built from instead.
-- Encoder and ensemble versions record their weights as well.

ALTER TABLE versions
    ALTER COLUMN training_data_digest DROP NOT NULL,
    ALTER COLUMN test_digest DROP NOT NULL;

ALTER TABLE lineage
    ALTER COLUMN dataset DROP NOT NULL,
    ALTER COLUMN source_sha256 DROP NOT NULL,
    ALTER COLUMN seed DROP NOT NULL,
    ALTER COLUMN train_digest DROP NOT NULL,
    ALTER COLUMN validation_digest DROP NOT NULL,
    ALTER COLUMN test_digest DROP NOT NULL,
    ADD COLUMN weights_sha256 text;  -- sha256 of the pre-trained weights file, if any
