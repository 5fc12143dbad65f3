// The admin console's entry point: one custom element per page, and the frame.
import { ConsoleApp } from "./app.js";
import { AuditLog } from "./pages/audit.js";
import { HealthPanel } from "./pages/health.js";
import { MetricsPanel } from "./pages/metrics.js";
import { ModerationQueue } from "./pages/queue.js";
import { ReportsQueue } from "./pages/reports.js";
import { UsersPage } from "./pages/users.js";

customElements.define("hf-queue", ModerationQueue);
customElements.define("hf-reports", ReportsQueue);
customElements.define("hf-users", UsersPage);
customElements.define("hf-audit", AuditLog);
customElements.define("hf-health", HealthPanel);
customElements.define("hf-metrics", MetricsPanel);
customElements.define("hf-console", ConsoleApp);
