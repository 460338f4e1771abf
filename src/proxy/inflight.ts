/** What an in-flight list holds: linked through the items themselves, so no allocation per request. */
export interface InFlightItem {
  prev: InFlightItem | null;
  next: InFlightItem | null;
  /** performance.now() when the request (or its replay) started. */
  startedAt: number;
  /** The latency tests that already counted this request as slow (bit i: quantile i). */
  slowMask: number;
  /** True once the response head arrived: its time to first byte is known. */
  readonly answered: boolean;
  /** Shadow copies: stable's latency for the same request once known (NaN before). */
  readonly pairedMs?: number;
}

/**
 * Requests in flight to one version, oldest first: appended on start, unlinked on finish (O(1)).
 * A periodic sweep walks it from the oldest to find requests past the latency thresholds.
 */
export class InFlight {
  head: InFlightItem | null = null;
  tail: InFlightItem | null = null;
  size = 0;

  add(item: InFlightItem): void {
    item.prev = this.tail;
    item.next = null;
    if (this.tail === null) this.head = item;
    else this.tail.next = item;
    this.tail = item;
    this.size++;
  }

  remove(item: InFlightItem): void {
    if (item.prev === null) {
      if (this.head !== item) return;
      this.head = item.next;
    } else item.prev.next = item.next;
    if (item.next === null) this.tail = item.prev;
    else item.next.prev = item.prev;
    item.prev = null;
    item.next = null;
    this.size--;
  }
}
