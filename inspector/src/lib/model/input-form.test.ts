import { describe, expect, it } from 'vitest';
import { initialValues, inputFieldOf, inputForm, inputValue } from './input-form';

/** What `GET /graphs/draft-critique` gives as its input schema. */
const draftCritique = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  properties: { brief: { type: 'string', minLength: 1 } },
  required: ['brief'],
  additionalProperties: false,
};

describe('the "start a run" form from a graph input JSON Schema', () => {
  it('makes one field per top-level property: draft-critique asks for brief, a required text', () => {
    expect(inputForm(draftCritique)).toEqual({
      mode: 'fields',
      fields: [{ name: 'brief', type: 'string', required: true, long: true, initial: '', hint: 'min length 1' }],
    });
  });

  it('picks an input by type: enums, numbers, checkboxes, and JSON for objects, arrays and unions; defaults fill them', () => {
    const schema = {
      type: 'object',
      properties: {
        tone: { type: 'string', enum: ['plain', 'formal'], default: 'plain' },
        depth: { type: 'integer', minimum: 1, maximum: 5, default: 2 },
        draft: { type: 'boolean' },
        tags: { type: 'array', items: { type: 'string' }, default: ['a'] },
        owner: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'who asks' },
        title: { type: 'string', maxLength: 80 },
      },
      required: ['depth'],
    };
    const form = inputForm(schema);
    if (form.mode !== 'fields') throw new Error(form.mode);
    expect(form.fields.map((f) => [f.name, f.type, f.required])).toEqual([
      ['tone', 'enum', false],
      ['depth', 'integer', true],
      ['draft', 'boolean', false],
      ['tags', 'json', false],
      ['owner', 'json', false],
      ['title', 'string', false],
    ]);
    expect(form.fields.find((f) => f.name === 'depth')!.hint).toBe('1 to 5');
    expect(form.fields.find((f) => f.name === 'title')!.long).toBe(false);
    expect(form.fields.find((f) => f.name === 'owner')!.description).toBe('who asks');
    expect(initialValues(form.fields)).toEqual({ tone: 'plain', depth: '2', draft: false, tags: '["a"]', owner: '', title: '' });
  });

  it('falls back to one JSON textarea without a schema, or for one that is not an object with properties', () => {
    expect(inputForm(null)).toEqual({ mode: 'json', template: '{}' });
    expect(inputForm({ type: 'string' })).toEqual({ mode: 'json', template: '{}' });
    expect(inputForm({ type: 'object', properties: {} })).toEqual({ mode: 'json', template: '{}' });
  });

  it('builds the input from what was typed: empty fields left out, numbers and JSON parsed, a checkbox its boolean', () => {
    const form = inputForm({
      type: 'object',
      properties: { n: { type: 'number' }, j: { type: 'object' }, b: { type: 'boolean' }, s: { type: 'string' } },
      required: ['s'],
    });
    if (form.mode !== 'fields') throw new Error(form.mode);
    expect(inputValue(form.fields, { n: ' 2.5 ', j: '{"a":1}', b: true, s: 'hi' })).toEqual({ input: { n: 2.5, j: { a: 1 }, b: true, s: 'hi' } });
    // A required field left empty is sent without it: the gateway refuses it, naming the field.
    expect(inputValue(form.fields, { n: '', j: '', b: false, s: '' })).toEqual({ input: { b: false } });
    expect(inputValue(form.fields, { n: 'ten' })).toEqual({ field: 'n', message: 'n: not a number' });
    expect(inputValue(form.fields, { j: '{oops' })).toMatchObject({ field: 'j', message: expect.stringMatching(/^j: not JSON/) });
  });

  it('maps the field a gateway error names (input.brief) to the form field', () => {
    expect(inputFieldOf('input.brief', ['brief'])).toBe('brief');
    expect(inputFieldOf('input.owner.email', ['owner'])).toBe('owner');
    expect(inputFieldOf('input', ['brief'])).toBeUndefined();
    expect(inputFieldOf('graph', ['graph'])).toBeUndefined();
  });
});
