// Asks for a bearer token (kept in sessionStorage: this browser tab's session only).

import { useState } from "preact/hooks";
import { tokenStore } from "../api/client.ts";

export function TokenDialog({ onClose }: { onClose: (changed: boolean) => void }) {
  const [token, setToken] = useState(tokenStore.get() ?? "");
  return (
    <div class="dialog-backdrop">
      <form
        class="dialog"
        onSubmit={(e) => { e.preventDefault(); tokenStore.set(token.trim() || null); onClose(true); }}
      >
        <h2>Token</h2>
        <p>This server checks tokens. Paste a JWT with the <code>read</code> scope (<code>admin</code> for the status overview). It is kept for this browser session only.</p>
        <textarea name="token" rows={4} value={token} onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)} placeholder="eyJhbGciOi…" />
        <div class="dialog-actions">
          <button type="button" onClick={() => { tokenStore.set(null); onClose(true); }}>Forget token</button>
          <button type="button" onClick={() => onClose(false)}>Cancel</button>
          <button type="submit" class="primary">Use token</button>
        </div>
      </form>
    </div>
  );
}
