// A refusal or failure in the server's own words (code, message, details).

import { ApiError } from "../api/client.ts";

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const api = error instanceof ApiError ? error : null;
  // An empty details object says nothing.
  const details = api?.details != null && !(typeof api.details === "object" && Object.keys(api.details).length === 0) ? api.details : null;
  return (
    <div class="error" role="alert">
      <div class="error-message">{api ? api.message : String((error as Error).message ?? error)}</div>
      {details !== null && <pre class="error-details">{JSON.stringify(details, null, 2)}</pre>}
    </div>
  );
}
