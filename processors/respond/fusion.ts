/**
 * Reciprocal rank fusion (Cormack, Clarke & Büttcher, 2009): each ranking contributes
 * 1 / (k + rank) for every id it holds, so ids ranked high by several retrievers rise to the top
 * without comparing their incomparable scores (BM25 vs cosine). Done here because this
 * Elasticsearch has no `rrf` retriever.
 */

/** The constant of the original paper: it damps the weight of the very first ranks. */
export const RRF_K = 60;

export interface FusedRank {
  readonly id: string;
  readonly score: number;
  /** 1-based rank of the id in each input ranking, null where the ranking does not hold it. */
  readonly ranks: readonly (number | null)[];
}

/** Fuses rankings (ids, best first) into one, best first; ties go to the better single rank, then the id. */
export function reciprocalRankFusion(rankings: readonly (readonly string[])[], k = RRF_K): FusedRank[] {
  const fused = new Map<string, { score: number; ranks: (number | null)[] }>();
  rankings.forEach((ranking, list) => {
    ranking.forEach((id, index) => {
      const entry = fused.get(id) ?? { score: 0, ranks: rankings.map(() => null) };
      // An id repeated within one ranking counts once, at its best rank.
      if (entry.ranks[list] !== null) return;
      entry.ranks[list] = index + 1;
      entry.score += 1 / (k + index + 1);
      fused.set(id, entry);
    });
  });
  const bestRank = (ranks: readonly (number | null)[]) => Math.min(...ranks.map((r) => r ?? Infinity));
  return [...fused.entries()]
    .map(([id, { score, ranks }]) => ({ id, score, ranks }))
    .sort((a, b) => b.score - a.score || bestRank(a.ranks) - bestRank(b.ranks) || a.id.localeCompare(b.id));
}
