/* How the CLI's tables write a number. */

export const dash = '-';

/** A rate as a percentage: two decimals under 10%, one above. */
export function pct(rate: number | undefined): string {
  if (rate === undefined || !Number.isFinite(rate)) return dash;
  const p = rate * 100;
  return `${p < 10 && p > 0 ? p.toFixed(2) : p.toFixed(1)}%`;
}

/** Milliseconds: one decimal under 10 ms, none above. */
export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return dash;
  return value < 10 ? `${value.toFixed(1)}ms` : `${Math.round(value)}ms`;
}
