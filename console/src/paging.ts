// Cursor pagination over an ordered query: a page reads at most its size plus one
// documents (the one more only says whether a next page exists), however long the queue;
// the total is a count() aggregation of the same query, which reads no documents.
import {
  getCountFromServer,
  getDocs,
  limit,
  query,
  type Query,
  type QueryDocumentSnapshot,
  startAfter,
} from "firebase/firestore";

export interface Page<T> {
  /** 0 for the first page. */
  index: number;
  docs: QueryDocumentSnapshot<T>[];
  hasNext: boolean;
  /** Documents the page's query read (``docs`` plus the look-ahead one, if any). */
  read: number;
}

export class CursorPager<T> {
  /** The last document of each page seen so far: page n starts after ``ends[n - 1]``. */
  private readonly ends: QueryDocumentSnapshot<T>[] = [];

  constructor(
    private readonly ordered: Query<T>,
    readonly size: number,
  ) {}

  /** Page ``index`` (0, or at most one past the last page seen). */
  async page(index: number): Promise<Page<T>> {
    const after = index > 0 ? this.ends[index - 1] : undefined;
    if (index > 0 && !after) throw new Error(`page ${index + 1} is not reachable yet`);
    const bounded = after
      ? query(this.ordered, startAfter(after), limit(this.size + 1))
      : query(this.ordered, limit(this.size + 1));
    const snapshot = await getDocs(bounded);
    const docs = snapshot.docs.slice(0, this.size);
    const last = docs.at(-1);
    if (last) this.ends[index] = last;
    return { index, docs, hasNext: snapshot.size > this.size, read: snapshot.size };
  }

  /** How many documents the whole query matches. */
  async total(): Promise<number> {
    return (await getCountFromServer(this.ordered)).data().count;
  }
}
