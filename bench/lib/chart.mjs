// The chart BENCHMARKS.md shows: one row per figure, a bar per library
// scaled to the larger of the two, the value on each bar and the
// wasmtp / nodemailer ratio at the right (green where wasmtp is better).

const COLORS = { wasmtp: '#5b4bd6', nodemailer: '#9aa0a6' };
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function value(v, unit) {
  if (v == null) return '—';
  if (unit === 'msg/s') return `${v.toFixed(0)} msg/s`;
  if (unit === 'RTT/msg') return `${v.toFixed(3)} RTT/msg`;
  if (unit === 'MB') return `${v.toFixed(1)} MB`;
  if (unit === 'ms') return `${v.toFixed(1)} ms`;
  return `${v.toFixed(2)} ${unit}`;
}

export function chart(results) {
  const figures = results.figures;
  const width = 900;
  const barX = 16;
  const barMax = 600;
  const rowH = 64;
  const top = 76;
  const height = top + figures.length * rowH + 30;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="16" y="24" font-size="16" font-weight="600">wasmtp ${esc(results.machine.wasmtp)} vs nodemailer ${esc(results.machine.nodemailer)} — median of ${results.setup.runs} runs, ${results.setup.messages} messages of ${((results.setup.messageBytes ?? 0) / 1000).toFixed(1)} KB</text>`);
  out.push(`<text x="16" y="42" fill="#555">${esc(`${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.machine.node}; RTT rows through a ${results.setup.rttMs} ms delay proxy`)}</text>`);
  out.push(`<rect x="16" y="52" width="10" height="10" fill="${COLORS.wasmtp}"/><text x="31" y="61">wasmtp</text>`);
  out.push(`<rect x="96" y="52" width="10" height="10" fill="${COLORS.nodemailer}"/><text x="111" y="61">nodemailer</text>`);
  out.push(`<text x="${width - 16}" y="61" text-anchor="end" fill="#555">wasmtp / nodemailer</text>`);
  figures.forEach((f, i) => {
    const y = top + i * rowH;
    const max = Math.max(f.wasmtp ?? 0, f.nodemailer ?? 0) || 1;
    out.push(`<text x="16" y="${y + 14}" font-weight="500">${esc(f.label)} <tspan fill="#777" font-weight="400">(${esc(f.better)} is better)</tspan></text>`);
    ['wasmtp', 'nodemailer'].forEach((lib, j) => {
      const w = f[lib] == null ? 0 : Math.max(1, (f[lib] / max) * barMax);
      const by = y + 20 + j * 18;
      out.push(`<rect x="${barX}" y="${by}" width="${w.toFixed(1)}" height="15" fill="${COLORS[lib]}" rx="2"/>`);
      out.push(`<text x="${barX + w + 6}" y="${by + 12}">${esc(value(f[lib], f.unit))}</text>`);
    });
    if (f.ratio != null) {
      const good = f.better === 'higher' ? f.ratio >= 1 : f.ratio <= 1;
      const shown = f.better === 'higher' ? `${f.ratio.toFixed(2)}×` : `${f.ratio.toFixed(2)}×`;
      out.push(`<text x="${width - 16}" y="${y + 38}" text-anchor="end" font-size="16" font-weight="600" fill="${good ? '#1a7f37' : '#b42318'}">${esc(shown)}</text>`);
    }
    out.push(`<line x1="16" x2="${width - 16}" y1="${y + rowH - 6}" y2="${y + rowH - 6}" stroke="#eee"/>`);
  });
  out.push(`<text x="16" y="${height - 10}" fill="#777">ratio = wasmtp / nodemailer. Reproduce: ${esc(results.command)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
