// What each benchmark section returns (paragraphs, tables, notes and the issue's targets it checks) and how the
// whole run becomes docs/benchmarks.md: setup facts first, the target verdicts, then one section per measurement.
// Tables are padded Markdown, so the same text reads well in a terminal.

/** A table: header cells and rows of already formatted cells; `right` lists the columns to right-align. */
export interface Table {
  readonly headers: readonly string[];
  readonly rows: readonly (readonly string[])[];
  readonly right?: readonly number[];
}

/** One of the issue's targets and how this run did against it. */
export interface Target {
  readonly name: string;
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean;
}

/** The result of one benchmark section. */
export interface Section {
  readonly title: string;
  /** Paragraphs shown before the tables: what was measured and how. */
  readonly intro: readonly string[];
  readonly tables: readonly Table[];
  /** Bullet points after the tables: caveats and explanations. */
  readonly notes: readonly string[];
  readonly targets: readonly Target[];
}

/** Facts about the run, shown first. */
export interface RunFacts {
  readonly rows: readonly (readonly [string, string])[];
}

/** Renders a table as aligned Markdown. */
export function renderTable(table: Table): string {
  const widths = table.headers.map((header, column) =>
    Math.max(3, header.length, ...table.rows.map((row) => (row[column] ?? '').length)),
  );
  const right = new Set(table.right ?? []);
  const cell = (text: string, column: number) =>
    right.has(column) ? text.padStart(widths[column]) : text.padEnd(widths[column]);
  const line = (cells: readonly string[]) => `| ${cells.map((text, column) => cell(text ?? '', column)).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (right.has(column) ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`;
  return [line(table.headers), rule, ...table.rows.map(line)].join('\n');
}

/** Renders one section: heading, intro, tables, notes. */
export function renderSection(section: Section): string {
  const parts = [`## ${section.title}`, ...section.intro, ...section.tables.map(renderTable)];
  if (section.notes.length) parts.push(section.notes.map((note) => `- ${note}`).join('\n'));
  return parts.join('\n\n');
}

/** Every section's targets in one table, with a plain "met" / "MISSED" verdict. */
export function targetsTable(sections: readonly Section[]): Table {
  return {
    headers: ['target', 'goal', 'measured', 'result'],
    rows: sections.flatMap((section) => section.targets).map((t) => [t.name, t.goal, t.measured, t.met ? 'met' : 'MISSED']),
  };
}

/** The whole docs/benchmarks.md. */
export function renderReport(facts: RunFacts, sections: readonly Section[]): string {
  const setup: Table = { headers: ['', ''], rows: facts.rows.map(([key, value]) => [key, value]) };
  return [
    '# Benchmarks',
    '_Written by `npm run bench` (scripts/bench.ts); rerun it to refresh these figures. Everything below comes from one ' +
      'run on one machine, with the variants interleaved round by round, so compare the ratios rather than the ' +
      'absolute times, which depend on the machine and its load._',
    '## Setup',
    renderTable(setup),
    '## Targets',
    renderTable(targetsTable(sections)),
    ...sections.map(renderSection),
  ].join('\n\n') + '\n';
}
