"""Model families: `linear` (TF-IDF word + char n-grams, logistic regression), `encoder`
(all-MiniLM-L6-v2 sentence embeddings, logistic-regression head) and `ensemble` (both)."""
