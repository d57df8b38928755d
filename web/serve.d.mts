import type { Server } from 'node:http';

export interface ServeDemoOptions {
  /** The built page (default web/dist). */
  dir?: string;
  /** 0 picks a free port. Default 5173. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Send COOP/COEP/CORP so the page is cross-origin isolated (threads). Default true. */
  isolation?: boolean;
}

/** Starts a static server for the built demo; resolves once it listens. */
export function serveDemo(options?: ServeDemoOptions): Promise<Server>;
