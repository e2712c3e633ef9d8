import { dec } from "../lib/money";

const WIDTH = 96;
const HEIGHT = 28;

/**
 * A small trend line from the live stream (decorative: the figures are in the row).
 * Plain SVG on purpose: a table re-renders every row on each tick, and a chart
 * library's component per row costs far more than this polyline.
 */
export function Sparkline({ points, rising }: { points: { price: string }[]; rising: boolean }) {
  if (points.length < 2) return <span aria-hidden className="sparkline-empty" />;
  const values = points.map((p) => dec(p.price));
  let low = values[0] ?? dec(0);
  let high = low;
  for (const v of values) {
    if (v.lt(low)) low = v;
    if (v.gt(high)) high = v;
  }
  const span = high.minus(low);
  const step = WIDTH / (values.length - 1);
  const path = values
    .map((v, i) => {
      const y = span.eq(0) ? HEIGHT / 2 : HEIGHT - 2 - Number(v.minus(low).div(span).times(HEIGHT - 4).toFixed(2));
      return `${(i * step).toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
  return (
    <svg aria-hidden className="sparkline" width={WIDTH} height={HEIGHT} viewBox={`0 0 ${WIDTH} ${HEIGHT}`}>
      <polyline points={path} fill="none" strokeWidth="1.5" stroke={rising ? "var(--grass-9)" : "var(--red-9)"} />
    </svg>
  );
}
