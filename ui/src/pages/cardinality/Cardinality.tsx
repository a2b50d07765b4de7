// Cardinality: series per metric and distinct values per dimension key, largest first; a key shows its
// most frequent values; everything links to Explore.

import { useEffect, useState } from "preact/hooks";
import { client } from "../../api/client.ts";
import type { Cardinality as Answer, DimensionValue } from "../../api/types.ts";
import { ErrorBox } from "../../components/ErrorBox.tsx";
import { formatValue } from "../../lib/query.ts";
import { Link } from "../../lib/route.tsx";

export function Cardinality() {
  const [answer, setAnswer] = useState<Answer | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => { client.cardinality().then(setAnswer, setError); }, []);
  return (
    <div class="cardinality">
      <ErrorBox error={error} />
      {answer && answer.metrics.length === 0 && <p class="muted">No metrics stored yet.</p>}
      {answer?.metrics.map((m) => (
        <section class="panel">
          <h2><Link href={`/ui/explore?metric=${encodeURIComponent(m.metric)}`}>{m.metric}</Link> <span class="muted">{formatValue(m.series)} series</span></h2>
          <table class="results">
            <thead><tr><th>dimension</th><th>distinct values</th><th>top values</th></tr></thead>
            <tbody>{m.dimensions.map((d) => <KeyRow metric={m.metric} dimension={d.key} distinct={d.distinct_values} />)}</tbody>
          </table>
        </section>
      ))}
    </div>
  );
}

function KeyRow({ metric, dimension, distinct }: { metric: string; dimension: string; distinct: number }) {
  const [top, setTop] = useState<DimensionValue[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  return (
    <tr>
      <td><Link href={`/ui/explore?metric=${encodeURIComponent(metric)}&groupBy=${encodeURIComponent(dimension)}`}>{dimension}</Link></td>
      <td class="num">{formatValue(distinct)}</td>
      <td>
        {top === null
          ? <button type="button" class="link" onClick={() => client.values(metric, dimension, "", 10).then(setTop, setError)}>show top 10</button>
          : top.map((v) => <span class="chip">{v.value || "(empty)"} <span class="muted">{formatValue(v.points)}</span></span>)}
        <ErrorBox error={error} />
      </td>
    </tr>
  );
}
