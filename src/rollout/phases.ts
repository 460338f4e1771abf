export type { Phase } from '../shapes.js';
