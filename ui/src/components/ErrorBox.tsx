// A refusal or failure in the server's own words (code, message, details).

import { ApiError } from "../api/client.ts";

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const api = error instanceof ApiError ? error : null;
  return (
    <div class="error" role="alert">
      <div class="error-message">{api ? api.message : String((error as Error).message ?? error)}</div>
      {api && api.details != null && <pre class="error-details">{JSON.stringify(api.details, null, 2)}</pre>}
    </div>
  );
}
